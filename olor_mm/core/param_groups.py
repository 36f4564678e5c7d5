"""Layer-wise rollback parameter groups for a plain torch optimizer.

:func:`olor_mm.layers.numbering.number_pretrained` numbers the layers of the
pretrained parameters by depth; :func:`layerwise_rollback_groups` turns that
into torch param groups carrying OLOR's coefficient (Eq. 8/9)::

    lam_i = iota2 + (1 - i / n) ** gamma * (iota1 - iota2)

(``iota1 = rollback_max``, ``iota2 = rollback_min``, ``gamma =
rollback_power``; ``lam = iota1`` with one layer) as the group key
``rollback``, and the depth ``i`` as ``layer_id`` (None for parameters that
are not pretrained, whose ``rollback`` is 0). MMEngine's
:class:`~olor_mm.LayerwiseRollbackConstructor` uses the same numbering.

This module imports nothing of MMEngine.
"""
from typing import Dict, List, Optional, Sequence

import torch.nn as nn

from ..layers.layer_schemes import Rule
from ..layers.numbering import number_pretrained, tensor_layers
from .rollback import as_real, check_rollback_range, layerwise_rollback
from .theta0 import LEGACY_STATE_KEY, find_anchor

__all__ = [
    'layer_lams', 'layerwise_rollback_groups', 'merge_param_groups',
    'guard_group_layout'
]


def layer_lams(count: int, rollback_max: float, rollback_min: float,
               rollback_power: float) -> List[float]:
    """``lam_i`` of layers ``0..count-1`` (Eq. 8/9), validated once
    (numpy scalars and 0-d tensors are taken as numbers)."""
    rollback_max, rollback_min, rollback_power = (
        as_real(v) for v in (rollback_max, rollback_min, rollback_power))
    check_rollback_range(rollback_max, rollback_min, rollback_power)
    return [
        layerwise_rollback(
            i,
            count - 1,
            rollback_max,
            rollback_min,
            rollback_power,
            check=False) for i in range(count)
    ]


def layerwise_rollback_groups(model: nn.Module,
                              pretrained_prefixes: Sequence[str] = (
                                  'backbone', ),
                              rollback_max: float = 0.01,
                              rollback_min: float = 0.0,
                              rollback_power: float = 1.0,
                              layer_unit: str = 'block',
                              layer_patterns: Optional[Sequence[Rule]] = None,
                              pretrained_options: Optional[dict] = None,
                              exclude=None) -> List[dict]:
    """Param groups for any torch optimizer, with OLOR's ``rollback``.

    One group per pretrained layer (depth order; parameters in
    ``named_parameters()`` order), each with ``rollback = lam_i`` and
    ``layer_id = i``, then one group of the other trainable parameters with
    ``rollback = 0.0`` and ``layer_id = None``. Frozen parameters
    (``requires_grad=False``) are left out but keep their place in the
    numbering; empty groups are left out.

    Args:
        model (nn.Module): The model to fine-tune.
        pretrained_prefixes (Sequence[str]): Modules (or parameters) whose
            weights hold pretrained values, e.g. ``('backbone',)``;
            ``('',)`` is the whole model. They choose *which* parameters
            roll back; how they are numbered comes from the model
            (:mod:`olor_mm.layers.numbering`).
        rollback_max (float): iota1, lam of the shallowest layer, in [0, 1].
        rollback_min (float): iota2, lam of the deepest layer, in
            [0, rollback_max].
        rollback_power (float): gamma >= 0, how fast lam decays with depth.
        layer_unit (str): ``'block'`` (layers by architecture) or
            ``'param'`` (every tensor a layer, the reference code).
        layer_patterns (list, optional): Depth rules replacing every other
            source of the numbering (see :mod:`olor_mm.layers.layer_schemes`).
        pretrained_options (dict, optional): Extra options of every
            pretrained group, e.g. ``dict(weight_decay=0.0)`` (the rollback
            replaces decay toward zero there).
        exclude (optional): Names, modules or parameters left out of the
            pretrained ones, e.g. a timm model's classifier:
            ``pretrained_prefixes=('',), exclude=model.get_classifier()``.

    Returns:
        list[dict]: Param groups for ``torch.optim.*(groups, ...)``; then
        :func:`olor_mm.attach_rollback` on the optimizer.

    Example:
        >>> groups = layerwise_rollback_groups(
        ...     model, pretrained_prefixes=('backbone',), rollback_max=0.01)
        >>> opt = torch.optim.AdamW(groups, lr=1e-4, weight_decay=0.05)
        >>> handle = attach_rollback(opt)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            'layerwise_rollback_groups takes the model (an nn.Module), not '
            f'{type(model).__name__}: it numbers the layers from the '
            'module names; pass model, not model.parameters().')
    for key in ('rollback', 'layer_id', 'params'):
        if key in (pretrained_options or {}):
            raise ValueError(
                f'pretrained_options has {key!r}: that key is set by '
                'layerwise_rollback_groups itself; use rollback_max / '
                'rollback_min / rollback_power.')
    layer_of, count, _, _ = number_pretrained(model, pretrained_prefixes,
                                              layer_unit, layer_patterns,
                                              exclude)
    lams = layer_lams(count, rollback_max, rollback_min, rollback_power)
    layer_of_tensor = tensor_layers(model, layer_of)
    layers: List[List[nn.Parameter]] = [[] for _ in range(count)]
    others: List[nn.Parameter] = []
    for p in model.parameters():  # each tensor once, tied ones too
        if not p.requires_grad:
            continue
        layer = layer_of_tensor.get(id(p))
        (others if layer is None else layers[layer]).append(p)
    groups = [
        dict(
            params=params,
            rollback=lams[i],
            layer_id=i,
            **(pretrained_options or {})) for i, params in enumerate(layers)
        if params
    ]
    if others:
        groups.append(dict(params=others, rollback=0.0, layer_id=None))
    if not groups:
        raise ValueError(
            f'{type(model).__name__} has no trainable parameter: nothing to '
            'optimise (every parameter has requires_grad=False).')
    return groups


def hashable_option(value):
    """A hashable stand-in for a group option (lists become tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(hashable_option(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable_option(v)) for k, v in value.items()))
    return value


def merge_param_groups(groups: List[dict]) -> List[dict]:
    """Merge groups whose options are all equal; order of first appearance.

    Every key but ``params`` (lr, weight_decay, momentum / betas / eps, any
    other optimizer key, ``rollback``, ``layer_id``, ``lr_mult`` ...) takes
    part in the comparison, so each parameter keeps exactly the options it
    had; parameters keep their order within a merged group. torch's fused
    and foreach kernels batch within a group only, which is what this buys.
    """
    merged: Dict[tuple, dict] = {}
    for group in groups:
        key = tuple(
            sorted((k, hashable_option(v)) for k, v in group.items()
                   if k != 'params'))
        if key in merged:
            merged[key]['params'] += list(group['params'])
        else:
            merged[key] = dict(group, params=list(group['params']))
    return list(merged.values())


def guard_group_layout(optimizer,
                       merged: bool,
                       key: str = 'paramwise_cfg.merge_groups'):
    """Name ``key`` when a state dict of the other group layout is loaded.

    torch's own message ("loaded state dict has a different number of
    parameter groups") does not say why; a checkpoint written with one group
    per parameter and loaded into merged groups (or the reverse) is the
    usual reason. Registered first among the load pre-hooks.
    """

    def check(opt, state_dict):
        anchor = find_anchor(opt)
        if anchor is not None and anchor.active:
            entry = state_dict.get(anchor.state_key,
                                   state_dict.get(LEGACY_STATE_KEY))
            if entry is None:
                return None  # the anchor names the real cause: no theta0
            # another numbering explains a layout change best: say that
            anchor.check_entry(entry)
        saved = state_dict.get('param_groups', [])
        here = opt.param_groups
        if [len(g['params'])
                for g in saved] == [len(g['params']) for g in here]:
            return None
        per_param = bool(saved) and all(len(g['params']) == 1 for g in saved)
        raise ValueError(
            f'the optimizer state to load has {len(saved)} param groups, '
            f'this optimizer {len(here)}: ' +
            (f'the checkpoint was written with one group per parameter; '
             f'set {key}=False to resume it.' if per_param and merged else
             f'the checkpoint was written with merged groups; set '
             f'{key}=True to resume it.' if not merged else
             'the model or the param-group options changed since the '
             'checkpoint was written.'))

    return optimizer.register_load_state_dict_pre_hook(check, prepend=True)
