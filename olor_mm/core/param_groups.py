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
import logging
from typing import Dict, List, Optional, Sequence

import torch.nn as nn

from ..layers.layer_schemes import Rule
from ..layers.numbering import number_pretrained, tensor_layers
from .resume_checks import hashable_option
from .rollback import as_real, check_rollback_range, layerwise_rollback

logger = logging.getLogger(__name__)  # forwarded to MMEngine's, if there

__all__ = [
    'layer_lams', 'layerwise_rollback_groups', 'merge_param_groups',
    'RollbackGroups'
]


class RollbackGroups(list):
    """The param groups of :func:`layerwise_rollback_groups` (a list, for
    any torch optimizer), with ``setup``: the keys that made them, for
    ``attach_rollback(optimizer, setup=groups.setup)`` to save with theta0
    and check on resume."""

    def __init__(self, groups, setup: dict):
        super().__init__(groups)
        self.setup = setup


def _as_names(names):
    """``names`` as a tuple of strings, comparable across processes; None
    for modules or tensors (``exclude=model.head``), which have none."""
    if isinstance(names, str):
        return (names, )
    if isinstance(names,
                  (list, tuple)) and all(isinstance(n, str) for n in names):
        return tuple(names)
    return None


def layer_lams(count: int, rollback_max: float, rollback_min: float,
               rollback_power: float) -> List[float]:
    """``lam_i`` of layers ``0..count-1`` (Eq. 8/9), validated once
    (numpy scalars and 0-d tensors are taken as numbers)."""
    rollback_max, rollback_min, rollback_power = (
        as_real(v) for v in (rollback_max, rollback_min, rollback_power))
    check_rollback_range(rollback_max, rollback_min, rollback_power)
    if rollback_power == 0 and rollback_min != rollback_max and count > 1:
        logger.warning(
            'rollback_power=0 gives every layer lam = rollback_max=%s '
            '((1 - i/n) ** 0 = 1, the deepest layer too), so rollback_min=%s '
            'is not used. For lam decaying from rollback_max to rollback_min '
            'with depth set rollback_power > 0 (1 is linear); for one lam '
            'everywhere leave rollback_min out.', rollback_max, rollback_min)
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
    (``requires_grad=False``) are left out; a layer whose every tensor is
    frozen takes no depth, so the shallowest trainable pretrained layer
    gets ``rollback_max``; empty groups are left out.

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
        RollbackGroups: Param groups (a list of dicts) for
        ``torch.optim.*(groups, ...)``; then
        ``olor_mm.attach_rollback(optimizer, setup=groups.setup)``, so that
        a resume with groups made otherwise is refused as under MMEngine.

    Example:
        >>> groups = layerwise_rollback_groups(
        ...     model, pretrained_prefixes=('backbone',), rollback_max=0.01)
        >>> opt = torch.optim.AdamW(groups, lr=1e-4, weight_decay=0.05)
        >>> handle = attach_rollback(opt, setup=groups.setup)
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
    numbering = number_pretrained(model, pretrained_prefixes, layer_unit,
                                  layer_patterns, exclude)
    layer_of, count = numbering.layer_of, numbering.count
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
    return RollbackGroups(
        groups,
        dict(
            rollback_max=rollback_max,
            rollback_min=rollback_min,
            rollback_power=rollback_power,
            pretrained_prefixes=_as_names(pretrained_prefixes),
            exclude_prefixes=_as_names(exclude),
            layer_unit=layer_unit,
            layer_patterns=layer_patterns))


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
