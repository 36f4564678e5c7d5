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
    if len(saved) == len(here):
        gi, (a, b) = next((gi, (len(sg['params']), len(g['params'])))
                          for gi, (sg, g) in enumerate(zip(saved, here))
                          if len(sg['params']) != len(g['params']))
        layer = here[gi].get('layer_id')
        head = (f'param group {gi} of the optimizer state to load holds {a} '
                f'tensors, this optimizer\'s {b} (' +
                ('the tensors that do not roll back'
                 if layer is None else f'pretrained layer {layer}') + '): ')
    else:
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
        why = ('the model, the pretrained prefixes, the param-group options '
               'or which tensors are frozen (requires_grad) changed since '
               'the checkpoint was written. Resume with the model and '
               f'freezing it was written with, or {NEW_FINE_TUNE}.')
    raise ValueError(head + why)


def check_theta0(owner: str,
                 saved: Dict[int, torch.Tensor],
                 want: Dict[int, torch.Tensor],
                 names: Optional[Dict[int, str]] = None) -> None:
    """``saved`` (state index -> theta0) covers ``want`` (state index ->
    anchored parameter) with the parameters' shapes and finite values
    (``names``: ``{id(param): name}`` for the messages)."""
    if set(saved) != set(want):
        raise ValueError(
            f'{owner}: the saved theta0 covers {len(saved)} tensors, this '
            f'model anchors {len(want)} (indices differ: e.g. '
            f'{sorted(set(saved) ^ set(want))[:5]}); the model, the '
            'pretrained prefixes or the optimizer set-up changed since the '
            'checkpoint was written.')
    for k, p in want.items():
        what = (names or {}).get(id(p)) or f'parameter #{k}'
        if saved[k].shape != p.shape:
            raise ValueError(
                f'{owner}: the saved theta0 of {what} has shape '
                f"{tuple(saved[k].shape)}, the model's has "
                f'{tuple(p.shape)}; the checkpoint is of another model (or '
                'of a run sharded over another number of processes).')
        if not bool(torch.isfinite(saved[k]).all()):
            raise ValueError(
                f'{owner}: the saved theta0 of {what} holds NaN or '
                'inf; the checkpoint is damaged.')


#: per-parameter optimizer state that torch's optimizers keep with the
#: parameter's shape (Adam's moments, SGD's momentum, Adagrad's sum, ...)
ELEMENTWISE_STATE = ('exp_avg', 'exp_avg_sq', 'max_exp_avg_sq',
                     'momentum_buffer', 'sum', 'square_avg', 'acc_delta',
                     'grad_avg', 'exp_inf', 'ax', 'prev', 'step_size')


def check_state_shapes(state_dict: dict,
                       optimizer,
                       names: Optional[Dict[int, str]] = None) -> None:
    """Every per-parameter state tensor to load has its parameter's shape.

    torch's single-tensor kernels stop at the first step on a state of
    another shape; its fused and foreach kernels do not check, and train on
    (or write past the tensor's memory). A config edited since the
    checkpoint (``num_classes``) is the usual cause. Checked for every
    kernel, before torch loads anything.

    Args:
        state_dict: The optimizer state to load (torch's layout: ``state``
            by index, ``param_groups`` listing the indices).
        optimizer: The optimizer it is loaded into.
        names: ``{id(param): name}`` for the message (else the group and
            position are named).

    Raises:
        ValueError: naming the parameter, its shape and the state's.
    """
    state = state_dict.get('state') or {}
    for gi, (saved, group) in enumerate(
            zip(state_dict.get('param_groups') or [], optimizer.param_groups)):
        for pos, (k, p) in enumerate(zip(saved['params'], group['params'])):
            for key, value in (state.get(k) or {}).items():
                if (key in ELEMENTWISE_STATE and torch.is_tensor(value)
                        and value.shape != p.shape):
                    what = (names or {}).get(
                        id(p)) or (f'tensor {pos} of param group {gi}')
                    raise ValueError(
                        f'the optimizer state to load does not fit the '
                        f'model: {what} has shape {tuple(p.shape)}, its '
                        f'{key!r} in the checkpoint {tuple(value.shape)}. '
                        'The model changed since the checkpoint was written '
                        '(an edited num_classes, another backbone). Resume '
                        'with the config it was written with, or ' +
                        NEW_FINE_TUNE + ' (layers of another shape then '
                        'start from their init).')
