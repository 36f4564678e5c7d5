"""What an anchor checks before torch loads an optimizer state dict.

A state dict written with another set-up (which tensors are anchored, how
they are numbered), another param-group layout, another optimizer, or with
a theta0 that does not fit the model is refused before torch touches the
optimizer, with the key to set. Each function raises or returns; none
changes the state dict. Used by :class:`olor_mm.core.theta0.Anchor`.

This module imports nothing of MMEngine.
"""
from typing import Dict, List, Optional

import torch

#: keys of the structural set-up (which tensors are anchored, how they are
#: numbered): a checkpoint written with other values is refused on load
STRUCTURAL_KEYS = ('pretrained_prefixes', 'exclude_prefixes', 'layer_unit',
                   'layer_patterns')

#: hyper-parameters of the rollback: the checkpoint's apply on resume (torch
#: restores every group's ``rollback``), with a warning when edited
TUNABLE_KEYS = ('rollback_max', 'rollback_min', 'rollback_power',
                'scale_with_lr')

#: the way out when a state dict cannot continue this run
NEW_FINE_TUNE = ('start a new fine-tune from its weights with '
                 'load_from=<ckpt> and resume=False')


def hashable_option(value):
    """A hashable stand-in for a group option (lists become tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(hashable_option(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable_option(v)) for k, v in value.items()))
    return value


def check_optimizer(owner: str, entry: dict, optimizer) -> None:
    """The state of another optimizer type cannot continue this one."""
    saved = entry.get('optimizer')
    kind = type(optimizer).__name__
    if saved and saved != kind:
        raise ValueError(
            f'{owner}: the optimizer state to load is of {saved}, this '
            f'optimizer is {kind}: its state (moments, buffers) cannot '
            f'continue another optimizer. Resume with optimizer.type='
            f'{saved!r}, or {NEW_FINE_TUNE}.')


def check_setup(owner: str, saved: Optional[dict],
                mine: Optional[dict]) -> None:
    """Refuse a state dict whose anchored tensors were chosen or numbered
    with another set-up (:data:`STRUCTURAL_KEYS`)."""
    saved, mine = saved or {}, mine or {}
    diff = [
        k for k in STRUCTURAL_KEYS if k in saved and k in mine
        and hashable_option(saved[k]) != hashable_option(mine[k])
    ]
    if diff:
        raise ValueError(
            f'{owner}: the optimizer state to load was written with ' +
            ', '.join(f'{k}={saved[k]!r}' for k in diff) +
            ', this set-up has ' + ', '.join(f'{k}={mine[k]!r}'
                                             for k in diff) +
            ': its layers and theta0 are numbered differently. Resume with '
            f"the checkpoint's values, or {NEW_FINE_TUNE}.")


def edited_keys(saved: Optional[dict], mine: Optional[dict]) -> List[str]:
    """The :data:`TUNABLE_KEYS` set to other values since the state dict
    was written."""
    saved, mine = saved or {}, mine or {}
    return [
        k for k in TUNABLE_KEYS
        if k in saved and k in mine and saved[k] != mine[k]
    ]


def check_layout(state_dict: dict, optimizer, saved_setup: Optional[dict],
                 setup: Optional[dict]) -> None:
    """Name the cause when the param groups to load differ from the
    optimizer's (torch's own message, "a different number of parameter
    groups", names none)."""
    saved = state_dict.get('param_groups', [])
    here = optimizer.param_groups
    if [len(g['params']) for g in saved] == [len(g['params']) for g in here]:
        return
    key = 'paramwise_cfg.merge_groups'
    merged = (setup or {}).get('merge_groups')
    # the checkpoint's own layout where it says it, else a guess
    was_merged = (saved_setup or {}).get('merge_groups')
    if was_merged is None and merged:
        was_merged = not (saved and all(len(g['params']) == 1 for g in saved))
    elif was_merged is None and merged is False:
        was_merged = True
    edited = edited_keys(saved_setup, setup)
    head = (f'the optimizer state to load has {len(saved)} param groups, '
            f'this optimizer {len(here)}: ')
    if merged and was_merged is False:
        why = ('the checkpoint was written with one group per parameter; '
               f'set {key}=False to resume it.')
    elif merged is False and was_merged:
        why = ('the checkpoint was written with merged groups; set '
               f'{key}=True to resume it.')
    elif edited:
        why = ('the checkpoint was written with ' +
               ', '.join(f'{k}={saved_setup[k]!r}' for k in edited) +
               ' and this config has ' + ', '.join(f'{k}={setup[k]!r}'
                                                   for k in edited) +
               ', which gives the layers other lam and so other merged '
               'groups. Resume with the checkpoint\'s values (on resume '
               'they apply anyway), or ' + NEW_FINE_TUNE + '.')
    else:
        why = ('the model, the pretrained prefixes or the param-group '
               'options changed since the checkpoint was written.')
    raise ValueError(head + why)


def check_theta0(owner: str, saved: Dict[int, torch.Tensor],
                 want: Dict[int, torch.Tensor]) -> None:
    """``saved`` (state index -> theta0) covers ``want`` (state index ->
    anchored parameter) with the parameters' shapes and finite values."""
    if set(saved) != set(want):
        raise ValueError(
            f'{owner}: the saved theta0 covers {len(saved)} tensors, this '
            f'model anchors {len(want)} (indices differ: e.g. '
            f'{sorted(set(saved) ^ set(want))[:5]}); the model, the '
            'pretrained prefixes or the optimizer set-up changed since the '
            'checkpoint was written.')
    for k, p in want.items():
        if saved[k].shape != p.shape:
            raise ValueError(
                f'{owner}: the saved theta0 of parameter #{k} has shape '
                f"{tuple(saved[k].shape)}, the model's has "
                f'{tuple(p.shape)}; the checkpoint is of another model (or '
                'of a run sharded over another number of processes).')
        if not bool(torch.isfinite(saved[k]).all()):
            raise ValueError(
                f'{owner}: the saved theta0 of parameter #{k} holds NaN or '
                'inf; the checkpoint is damaged.')
