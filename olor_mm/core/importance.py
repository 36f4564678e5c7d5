"""The importance-weighted rollback: OLOR's review step, weighted per
element by how much the upstream task depends on each weight (plain torch).

OLOR's rollback (Eq. 6) pulls every weight of layer ``i`` alike, by
``lam_i``; EWC weighs each weight by its Fisher information ``F`` but
passes its pull through the optimizer, where Adam divides it by the
gradient's second moment. This rollback has both: Eq. 6's decoupled lerp,
after the optimizer's step, with a weight ``w`` in [0, 1] per element::

    theta_t = theta_hat_t + lam_eff * w * (theta0 - theta_hat_t)
    lam_eff = lam_i * lr_t / lr_0          (Eq. 8/9, scale_with_lr: OLOR's)

``w`` comes from the diagonal Fisher ``F`` of the upstream task at theta0
(:mod:`olor_mm.core.fisher`, EWC's estimate), normalised within each layer
``i`` of the layer numbering (every tensor with that ``layer_id``):

- ``importance_norm='mean'``: ``w = F / (F + mean_i F)``; a weight of the
  layer's mean importance gets ``w = 1/2``, an unimportant one 0, and no
  weight reaches 1;
- ``importance_norm='max'``: ``w = F / max_i F``; the layer's most
  important weight gets the full ``lam_eff``.

Both are invariant to the scale of ``F``. A layer whose ``F`` is zero
everywhere (no upstream loss reaches it) gets ``w = 0``: it is not pulled
back, and a warning names it. ``w`` is computed once, at the first step
(the weights are theta0 then), and saved with theta0 as per-parameter
optimizer state (``'olor_rollback.importance'``), so that a resume goes on
with the same ``w``. The step costs one more multi-tensor pass than OLOR's
(``lam_eff * w``, then the lerp; :func:`olor_mm.core.rollback.rollback_`).

This module imports nothing of MMEngine.
"""
import logging
from collections import defaultdict
from typing import Callable, Dict, Hashable, List, Optional

import torch

from .attach import RollbackHandle
from .fisher import check_fisher_covers, zeros_for_joined
from .rollback import is_low_precision

logger = logging.getLogger(__name__)

__all__ = [
    'IMPORTANCE_NORMS', 'normalize_importance', 'ImportanceRollbackHandle',
    'attach_importance_rollback'
]

#: how ``F`` becomes ``w`` within a layer (``importance_norm``)
IMPORTANCE_NORMS = ('mean', 'max')
#: what ``w`` is computed from (``importance``)
IMPORTANCES = ('fisher', )


def check_importance_norm(norm) -> None:
    if norm not in IMPORTANCE_NORMS:
        raise ValueError(
            f'importance_norm={norm!r} is unknown; use one of '
            f"{IMPORTANCE_NORMS}: 'mean' gives w = F / (F + mean F), 'max' "
            'w = F / max F, within each layer (paramwise_cfg.'
            'importance_norm in a config).')


@torch.no_grad()
def normalize_importance(fisher: List[torch.Tensor], layers: List[Hashable],
                         norm: str) -> List[torch.Tensor]:
    """``w`` of every tensor from its ``F`` and its layer.

    Args:
        fisher: ``F`` per tensor (non-negative).
        layers: The layer of each tensor (its ``layer_id``); tensors of one
            layer share the mean (or max) ``F`` they are divided by.
        norm: ``'mean'``: ``w = F / (F + mean F)``; ``'max'``: ``w = F /
            max F`` (over the layer's elements).

    Returns:
        list[Tensor]: ``w`` in [0, 1] per tensor, zeros for a layer whose
        ``F`` is zero everywhere.
    """
    check_importance_norm(norm)
    if len(fisher) != len(layers):
        raise ValueError(f'{len(fisher)} Fisher tensors for {len(layers)} '
                         'layer ids')
    members: Dict[Hashable, List[int]] = defaultdict(list)
    for k, layer in enumerate(layers):
        members[layer].append(k)
    out: List[Optional[torch.Tensor]] = [None] * len(fisher)
    for idx in members.values():  # once per run, one pass per layer
        fs = [fisher[k] for k in idx]
        if any(
                bool((f < 0).any()) or not bool(torch.isfinite(f).all())
                for f in fs):
            raise ValueError('the Fisher information must be finite and '
                             '>= 0 (a squared gradient).')
        count = sum(f.numel() for f in fs)
        if norm == 'mean':
            ref = sum(float(f.double().sum()) for f in fs) / max(count, 1)
        else:
            ref = max((float(f.max()) for f in fs if f.numel()), default=0.0)
        for k, f in zip(idx, fs):
            if not ref > 0:
                out[k] = torch.zeros_like(f)
            elif norm == 'mean':
                out[k] = f / (f + ref)
            else:
                out[k] = (f / ref).clamp_(max=1.0)
    return out


def _importance_dtype(p: torch.Tensor) -> torch.dtype:
    """The dtype ``w`` is held in: float32 for bfloat16 / float16 weights
    (their spacing would round ``lam_eff * w`` away), else the weight's."""
    return torch.float32 if is_low_precision(p.dtype) else p.dtype


def _wide(dtype: torch.dtype) -> torch.dtype:
    """float32, or the weights' wider dtype."""
    return torch.promote_types(dtype, torch.float32)


class ImportanceRollbackHandle(RollbackHandle):
    """OLOR's rollback with a per-element weight ``w`` from the upstream
    Fisher (see the module docstring); made by
    :func:`attach_importance_rollback`.

    Args:
        optimizer (torch.optim.Optimizer): As :class:`RollbackHandle`.
        fisher_source (callable, optional): ``fisher_source(handle) ->
            ({id(param): F}, scale)``, the Fisher of the anchored tensors,
            called once at the first step; None: call :meth:`set_fisher`
            (or :meth:`set_importance`) before the first step.
        importance_norm (str): ``'mean'`` or ``'max'``. Defaults to
            ``'mean'``.
        **kwargs: The arguments of :class:`RollbackHandle`.

    Attributes:
        importance (dict | None): ``{id(param): w}`` of the anchored
            tensors once known.
    """

    PER_PARAM = ('theta0', 'importance')

    def __init__(self,
                 optimizer,
                 fisher_source: Optional[Callable] = None,
                 importance_norm: str = 'mean',
                 **kwargs):
        check_importance_norm(importance_norm)
        self.fisher_source = fisher_source
        self.importance_norm = importance_norm
        self.importance: Optional[Dict[int, torch.Tensor]] = None
        self._layout_importance = (None, None)
        super().__init__(optimizer, **kwargs)
        self.owner = 'OLOR rollback (importance-weighted)'

    # ------------------------------------------------------------- w
    def _layers(self, params: List[torch.Tensor]) -> List[Hashable]:
        """The layer of each tensor: its group's ``layer_id`` (a group
        without one is a layer of its own)."""
        where = {}
        for gi, g in enumerate(self.optimizer.param_groups):
            layer = g.get('layer_id')
            for p in g['params']:
                where[id(p)] = ('group', gi) if layer is None else layer
        return [where.get(id(p), ('tensor', k)) for k, p in enumerate(params)]

    def set_fisher(self, fisher: Dict[int, torch.Tensor]) -> None:
        """``w`` from ``{id(param): F}`` of the anchored tensors, normalised
        per layer (a frozen tensor without ``F`` gets zeros: it never
        moves)."""
        params = self.anchored_params
        check_fisher_covers(self.owner, params, fisher)
        fs = [
            fisher[id(p)].detach().to(device=p.device, dtype=_wide(p.dtype))
            if id(p) in fisher else torch.zeros_like(p, dtype=_wide(p.dtype))
            for p in params
        ]
        layers = self._layers(params)
        ws = normalize_importance(fs, layers, self.importance_norm)
        alive = {
            layer
            for layer, w, p in zip(layers, ws, params)
            if p.requires_grad and bool(w.any())
        }
        dead = sorted({
            str(layer)
            for layer, p in zip(layers, params)
            if p.requires_grad and layer not in alive
        })
        if dead:
            logger.warning(
                '%s: the Fisher information is zero on every weight of '
                'layer(s) %s: they are not pulled back (w = 0). Does the '
                'upstream loss reach them (fisher_model, '
                'pretrained_prefixes)?', self.owner, ', '.join(dead))
        self.set_importance({id(p): w for p, w in zip(params, ws)})

    def set_importance(self, importance: Dict[int, torch.Tensor]) -> None:
        """``{id(param): w}`` with ``w`` in [0, 1], of each anchored
        tensor's shape (float32 for bfloat16 / float16 weights, else the
        weight's dtype)."""
        out = {}
        for p in self.anchored_params:
            w = importance.get(id(p))
            if w is None:
                w = torch.zeros_like(p)
            if w.shape != p.shape:
                raise ValueError(f'{self.owner}: an importance tensor has '
                                 f"shape {tuple(w.shape)}, its parameter's "
                                 f'is {tuple(p.shape)}.')
            if not bool(((w >= 0) & (w <= 1)).all()):
                raise ValueError(
                    f'{self.owner}: importance weights must lie in [0, 1] '
                    '(a fraction of lam_eff); got values outside.')
            out[id(p)] = w.detach().to(
                device=p.device, dtype=_importance_dtype(p))
        self.importance = out
        self._layout_importance = (None, None)

    @torch.no_grad()
    def _before_update(self, layout, kwargs: dict) -> None:
        if self.importance is None:
            if self.fisher_source is None:
                raise RuntimeError(
                    f'{self.owner}: no importance weights: give the handle '
                    'a fisher_source, or call set_fisher(...) before the '
                    'first step (under MMEngine the constructor estimates '
                    'F at the first step from paramwise_cfg.'
                    'fisher_dataloader).')
            with torch.enable_grad():
                fisher, _ = self.fisher_source(self)
            self.set_fisher(fisher)
        if len(self.importance) != len(self._entries) and zeros_for_joined(
                self.owner, self.anchored_params, self.importance, 'w',
                _importance_dtype):
            self._layout_importance = (None, None)
        super()._before_update(layout, kwargs)

    def _importance(self, bucket: int, sel: List[int]) -> List[torch.Tensor]:
        if self.importance is None:
            raise RuntimeError(
                f'{self.owner}: rollback() before the first step: no '
                'importance weights yet (call set_fisher(...) first).')
        layout = self._current
        if self._layout_importance[0] is not layout:
            self._layout_importance = (layout, [[
                self.importance[id(p)] for p in b.params
            ] for b in layout.buckets])
        wb = self._layout_importance[1][bucket]
        return wb if len(sel) == len(wb) else [wb[k] for k in sel]

    # ----------------------------------------------------------- state
    def saved_with_theta0(self) -> dict:
        out = dict(super().saved_with_theta0())
        if self.importance is not None:
            out['importance'] = self.importance
        return out

    def state_entry(self) -> dict:
        entry = super().state_entry()
        entry['importance_norm'] = self.importance_norm
        return entry

    def check_entry(self, entry: dict, per_param: Dict[int, dict]) -> None:
        """Refuse theta0 without ``w`` (a plain rollback's), or ``w`` made
        with another ``importance_norm`` (before torch loads anything)."""
        if any('theta0' in v and 'importance' not in v
               for v in per_param.values()):
            raise KeyError(
                f'{self.owner}: the optimizer state to load holds theta0 '
                "but no importance weights ('importance'): it was written "
                'by the plain OLOR rollback. Resume it with '
                'paramwise_cfg.importance=None, or start a new fine-tune '
                'with load_from=<ckpt> and resume=False.')
        saved = (entry or {}).get('importance_norm')
        if saved is not None and saved != self.importance_norm:
            raise ValueError(
                f'{self.owner}: the optimizer state to load was written with '
                f'importance_norm={saved!r}, this run has '
                f'{self.importance_norm!r}: resume with '
                f'paramwise_cfg.importance_norm={saved!r}, or start a new '
                'fine-tune with load_from=<ckpt> and resume=False.')

    def _restore_extras(self, loaded) -> None:
        """``w`` (and the carried rounding) from the per-parameter state
        the pre-hook checked."""
        super()._restore_extras(loaded)
        importance = {
            id(p): extra['importance']
            for p, extra in loaded if 'importance' in extra
        }
        if importance:
            self.set_importance(importance)


def attach_importance_rollback(optimizer: torch.optim.Optimizer,
                               fisher_source: Optional[Callable] = None,
                               importance_norm: str = 'mean',
                               **kwargs) -> ImportanceRollbackHandle:
    """Attach the importance-weighted rollback to ``optimizer`` (the
    arguments of :func:`olor_mm.attach_rollback`, plus ``fisher_source``
    and ``importance_norm``: see :class:`ImportanceRollbackHandle`).

    Example:
        >>> groups = layerwise_rollback_groups(model, ('backbone',),
        ...                                    rollback_max=0.3)
        >>> opt = torch.optim.AdamW(groups, lr=1e-4)
        >>> handle = attach_importance_rollback(opt)
        >>> handle.set_fisher({id(p): F_of_p for p in ...})  # upstream F
    """
    return ImportanceRollbackHandle(
        optimizer,
        fisher_source=fisher_source,
        importance_norm=importance_norm,
        **kwargs)
