"""L2-SP and EWC: anchored penalties on a torch optimizer (plain torch).

Both add to the fine-tuning loss a regulariser toward the pretrained
weights ``w0_S`` (olor-mm's ``theta0``)::

    L2-SP (Li, Grandvalet & Davoine, 2018):
        Omega(w) = alpha / 2 * ||w_S - w0_S||^2 + beta / 2 * ||w_new||^2
    EWC (Kirkpatrick et al., 2017):
        Omega(w) = alpha / 2 * sum_i F_i (w_i - w0_i)^2
                   + beta / 2 * ||w_new||^2

``w_S`` are the weights of the pretrained groups (``layer_id`` not None,
as :func:`~olor_mm.layerwise_rollback_groups` and the MMEngine constructor
set it), ``w_new`` the other trainable ones, ``F`` the diagonal Fisher of
the upstream task at ``w0`` (:mod:`olor_mm.core.fisher`). The penalty is
applied as its gradient, added by the optimizer's step pre-hook to the
gradients the optimizer is about to use::

    g_S   <- g_S   + alpha * [F *] (w_S - w0_S)
    g_new <- g_new + beta  * w_new

on every tensor that got a loss gradient. So it works under any wrapper and
engine that steps the optimizer, with no change to the model or its loss.
Gradient clipping by an MMEngine wrapper happens before the step, so it
clips the loss gradient and not the penalty's. Under torch's GradScaler the
step sees unscaled gradients, except a fused optimizer's (``grad_scale``
set on the optimizer): the penalty is scaled to match, and a step with
inf/NaN gradients is skipped by the optimizer and the penalty alike.

This module imports nothing of MMEngine.
"""
import logging
from typing import Callable, Dict, List, Optional, Union

import torch

from .fisher import check_fisher_covers, zeros_for_joined
from .norms import squared_distance, squared_norm
from .rollback import is_real
from .theta0 import Anchor, _Layout

logger = logging.getLogger(__name__)

__all__ = ['L2SPAnchor', 'EWCAnchor', 'attach_l2sp', 'attach_ewc']

#: keys of the penalties' entries in the optimizer state dict
L2SP_STATE_KEY = 'l2sp_anchor'
EWC_STATE_KEY = 'ewc_anchor'


def _pretrained(group: dict) -> bool:
    return group.get('layer_id') is not None


def check_coefficient(key: str, value, method: str) -> float:
    """A penalty weight: a finite number >= 0."""
    if not is_real(value) or value < 0:
        raise ValueError(
            f'{key}={value!r} must be a finite number >= 0 (the weight of '
            f'the {method} penalty; Li et al. use alpha=0.1, beta=0.01 for '
            'L2-SP).')
    return float(value)


def _grad_scale(optimizer, kwargs: dict) -> Optional[float]:
    """The factor the gradients still carry (a fused optimizer under
    GradScaler), 1.0 otherwise; None for a step the scaler skips."""
    found_inf = getattr(optimizer, 'found_inf', kwargs.get('found_inf'))
    if found_inf is not None and bool(found_inf):
        return None
    scale = getattr(optimizer, 'grad_scale', kwargs.get('grad_scale'))
    return 1.0 if scale is None else float(scale)


class L2SPAnchor(Anchor):
    """The L2-SP penalty on one torch optimizer (see the module).

    Args:
        optimizer (torch.optim.Optimizer): Its groups carry ``layer_id``
            (None for the new, not pretrained, weights).
        alpha (float): Weight of the pull toward the pretrained weights.
            Defaults to 0.1 (Li et al.).
        beta (float): Weight of the L2 penalty on the new weights.
            Defaults to 0.01 (Li et al.).
        **kwargs: ``anchor_dtype``, ``from_current_weights``, ``setup`` of
            :class:`~olor_mm.core.theta0.Anchor`.
    """

    method = 'L2-SP'
    state_key = L2SP_STATE_KEY

    def __init__(self,
                 optimizer,
                 alpha: float = 0.1,
                 beta: float = 0.01,
                 anchor_dtype: Union[str, torch.dtype, None] = None,
                 **kwargs):
        self.alpha = check_coefficient('alpha', alpha, self.method)
        self.beta = check_coefficient('beta', beta, self.method)
        if not any(_pretrained(g) for g in optimizer.param_groups):
            raise ValueError(
                f'{self.method} needs to know which weights are pretrained: '
                'no param group has a layer_id. Build the groups with '
                'layerwise_rollback_groups, or under MMEngine with '
                "constructor='LayerwiseRollbackConstructor' and paramwise_"
                "cfg.pretrained_prefixes (e.g. ('backbone',)).")
        super().__init__(
            optimizer,
            _pretrained,
            self.state_key,
            anchor_dtype,
            owner=f'{self.method} anchor',
            **kwargs)
        if not self.trainable:
            raise ValueError(
                f'{self.method}: no trainable parameter is pretrained (all '
                'of pretrained_prefixes are frozen); unfreeze them or train '
                'without the penalty.')

    def _before_update(self, layout: _Layout, kwargs: dict) -> None:
        scale = _grad_scale(self.optimizer, kwargs)
        if scale is not None:
            self.add_penalty_grad(layout, scale)

    def _weights(self, layout: _Layout, bucket: int, sel: List[int]):
        """Per-tensor weights of the pull in ``bucket`` (its tensors
        ``sel``); None: 1 everywhere (L2-SP; EWC's Fisher)."""
        return None

    @torch.no_grad()
    def add_penalty_grad(self,
                         layout: Optional[_Layout] = None,
                         scale: float = 1.0) -> None:
        """``g += alpha [F] (w - w0)`` on pretrained, ``g += beta w`` on new
        tensors that got a gradient; ``scale`` multiplies both terms, for
        gradients that still carry a loss scale."""
        layout = layout or self._layout()
        if self.alpha:
            for i, b in enumerate(layout.buckets):
                sel = [k for k, p in enumerate(b.params) if p.grad is not None]
                if not sel:
                    continue
                params = [b.params[k] for k in sel]
                diff = torch._foreach_sub(params, [b.anchors[k] for k in sel])
                weights = self._weights(layout, i, sel)
                if weights is not None:
                    torch._foreach_mul_(diff, weights)
                torch._foreach_add_([p.grad for p in params],
                                    diff,
                                    alpha=self.alpha * scale)
        if self.beta:
            for params in layout.others:
                params = [p for p in params if p.grad is not None]
                if params:
                    torch._foreach_add_([p.grad for p in params],
                                        params,
                                        alpha=self.beta * scale)

    def penalty(self) -> float:
        """``Omega(w)`` now (theta0 taken from the weights if not yet)."""
        layout = self._layout()
        with torch.no_grad():
            anchored = sum(
                float(squared_distance(b.params, b.anchors))
                for b in layout.buckets)
            new = sum(float(squared_norm(ps)) for ps in layout.others)
        return self.alpha / 2 * anchored + self.beta / 2 * new


class EWCAnchor(L2SPAnchor):
    """The EWC penalty: L2-SP's pull weighted by the diagonal Fisher ``F``.

    ``F`` is estimated once, at the first step (the weights are theta0
    then), by ``fisher_source(anchor) -> {id(param): F}``, unless a state
    dict restored it with theta0 (per-parameter state
    ``'ewc_anchor.fisher'``). A tensor that joins the optimizer later has
    no upstream Fisher: ``F = 0`` (it is not pulled back).

    Args:
        optimizer (torch.optim.Optimizer): As :class:`L2SPAnchor`.
        fisher_source (callable, optional): Estimates ``F`` of the anchored
            tensors; None: set it by hand with :meth:`set_fisher` before
            the first step.
        alpha (float): Weight of the Fisher-weighted pull. Defaults to 1.0
            (with ``F`` normalised to mean 1: L2-SP's scale).
        beta (float): Weight of the L2 penalty on the new weights.
            Defaults to 0 (EWC has none).
    """

    method = 'EWC'
    state_key = EWC_STATE_KEY
    PER_PARAM = ('theta0', 'fisher')

    def __init__(self,
                 optimizer,
                 fisher_source: Optional[Callable] = None,
                 alpha: float = 1.0,
                 beta: float = 0.0,
                 **kwargs):
        self.fisher_source = fisher_source
        #: id(param) -> F of the anchored tensors
        self.fisher: Optional[Dict[int, torch.Tensor]] = None
        #: the raw mean F was divided by (None: not normalised)
        self.fisher_scale: Optional[float] = None
        self._layout_fisher = (None, None)
        super().__init__(optimizer, alpha=alpha, beta=beta, **kwargs)

    def set_fisher(self,
                   fisher: Dict[int, torch.Tensor],
                   scale: Optional[float] = None) -> None:
        """``{id(param): F}`` of the anchored tensors (a missing frozen one
        gets zeros: it never moves)."""
        params = self.anchored_params
        check_fisher_covers(self.owner, params, fisher)
        self.fisher = {
            id(p): fisher[id(p)].to(p.device)
            if id(p) in fisher else torch.zeros_like(p)
            for p in params
        }
        self.fisher_scale = scale
        self._layout_fisher = (None, None)

    def _before_update(self, layout: _Layout, kwargs: dict) -> None:
        if self.fisher is None:
            if self.fisher_source is None:
                raise RuntimeError(
                    'EWC: no Fisher information: give the anchor a '
                    'fisher_source, or call set_fisher(...) before the first '
                    'step (under MMEngine the constructor estimates it at '
                    'the first step from paramwise_cfg.fisher_dataloader).')
            with torch.enable_grad():
                fisher, scale = self.fisher_source(self)
            self.set_fisher(fisher, scale)
        if len(self.fisher) != len(self._entries) and zeros_for_joined(
                self.owner, self.anchored_params, self.fisher, 'F'):
            self._layout_fisher = (None, None)
        super()._before_update(layout, kwargs)

    def _weights(self, layout: _Layout, bucket: int, sel: List[int]):
        if self._layout_fisher[0] is not layout:
            self._layout_fisher = (layout,
                                   [[self.fisher[id(p)] for p in b.params]
                                    for b in layout.buckets])
        fb = self._layout_fisher[1][bucket]
        return fb if len(sel) == len(fb) else [fb[k] for k in sel]

    def penalty(self) -> float:
        """``alpha/2 sum F (w_S - w0_S)^2 + beta/2 ||w_new||^2``."""
        layout = self._layout()
        if self.fisher is None:
            raise RuntimeError('EWC: no Fisher information yet.')
        total = 0.0
        with torch.no_grad():
            for b in layout.buckets:
                diff = torch._foreach_sub(b.params, b.anchors)
                total += sum(
                    float((self.fisher[id(p)] * d * d).sum())
                    for p, d in zip(b.params, diff))
            new = sum(float(squared_norm(ps)) for ps in layout.others)
        return self.alpha / 2 * total + self.beta / 2 * new

    # ----------------------------------------------------------- state
    def saved_with_theta0(self) -> dict:
        return {} if self.fisher is None else dict(fisher=self.fisher)

    def state_entry(self) -> dict:
        entry = super().state_entry()
        entry['fisher_scale'] = self.fisher_scale
        return entry

    def check_entry(self, entry: dict, per_param: Dict[int, dict]) -> None:
        """Refuse theta0 without a Fisher (before torch loads anything)."""
        if any('theta0' in v and 'fisher' not in v
               for v in per_param.values()):
            raise KeyError(
                f'{self.owner}: the optimizer state to load holds theta0 '
                "but no Fisher information ('fisher'): it was not written "
                'by EWC. Resume from a checkpoint of the EWC run, or start a '
                'new fine-tune with load_from=<ckpt> and resume=False.')

    def _restore_extras(self, loaded) -> None:
        """``F`` from the per-parameter state the pre-hook checked."""
        fisher = {
            id(p): extra['fisher'].to(device=p.device, dtype=p.dtype)
            for p, extra in loaded if 'fisher' in extra
        }
        if fisher:
            self.set_fisher(fisher, (self._loaded_entry
                                     or {}).get('fisher_scale'))


def attach_l2sp(optimizer,
                alpha: float = 0.1,
                beta: float = 0.01,
                **kwargs) -> L2SPAnchor:
    """Attach the L2-SP penalty to ``optimizer`` (see :class:`L2SPAnchor`)."""
    return L2SPAnchor(optimizer, alpha=alpha, beta=beta, **kwargs)


def attach_ewc(optimizer,
               fisher_source=None,
               alpha: float = 1.0,
               beta: float = 0.0,
               **kwargs) -> EWCAnchor:
    """Attach the EWC penalty to ``optimizer`` (see :class:`EWCAnchor`)."""
    return EWCAnchor(
        optimizer, fisher_source, alpha=alpha, beta=beta, **kwargs)
