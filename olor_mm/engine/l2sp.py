"""L2-SP: the starting point as reference (Li, Grandvalet & Davoine, 2018).

The fine-tuning loss gets the regulariser::

    Omega(w) = alpha / 2 * ||w_S - w0_S||^2 + beta / 2 * ||w_new||^2

where ``w_S`` are the pretrained weights (anchored at their pretrained
values ``w0_S`` = olor-mm's ``theta0``) and ``w_new`` the weights the
pretrained model did not have. It is applied as its gradient, added to the
loss gradient before the optimizer step (and before gradient clipping)::

    g_S   <- g_S   + alpha * (w_S - w0_S)
    g_new <- g_new + beta  * w_new

so it needs no change to the model or its loss.
"""
import logging
from typing import NamedTuple, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from ..core.norms import squared_distance, squared_norm
from ..core.rollback import group_by_device_and_dtype, is_real
from ..core.theta0 import Anchor, AnchorViewsMixin
from .amp import CPUAmpMixin
from .training_start import take_theta0_at_training_start

#: key of L2-SP's entry (its theta0) in the optimizer state dict
STATE_KEY = 'l2sp_anchor'


def _check_coefficient(key: str, value, method: str = 'L2-SP') -> float:
    if not is_real(value) or value < 0:
        raise ValueError(
            f'optim_wrapper.{key}={value!r} must be a finite number >= 0 '
            f'(the weight of the {method} penalty; Li et al. use alpha=0.1, '
            'beta=0.01 for L2-SP).')
    return float(value)


class Penalty(NamedTuple):
    """What an anchored penalty is: its name in messages, the anchor that
    keeps ``w0`` (and what the penalty saves with it) under ``state_key``
    of the optimizer state, and ``alpha`` / ``beta`` when the config leaves
    them out."""
    method: str
    anchor_cls: type
    state_key: str
    alpha: float
    beta: float


class L2SPMixin(AnchorViewsMixin):
    """The L2-SP penalty on an MMEngine OptimWrapper (see below)."""

    #: LayerwiseRollbackConstructor gives this wrapper the groups only
    attaches_rollback = False

    #: Li et al.'s alpha and beta
    spec = Penalty('L2-SP', Anchor, STATE_KEY, alpha=0.1, beta=0.01)

    def __init__(self,
                 optimizer,
                 alpha: Optional[float] = None,
                 beta: Optional[float] = None,
                 anchor_dtype: Union[str, torch.dtype, None] = None,
                 **kwargs):
        super().__init__(optimizer=optimizer, **kwargs)
        self._init_l2sp(self.spec.alpha if alpha is None else alpha,
                        self.spec.beta if beta is None else beta, anchor_dtype)

    def _init_l2sp(self, alpha, beta, anchor_dtype) -> None:
        self.alpha = _check_coefficient('alpha', alpha, self.spec.method)
        self.beta = _check_coefficient('beta', beta, self.spec.method)
        groups = self.optimizer.param_groups
        if not any('layer_id' in g for g in groups):
            raise ValueError(
                f'{type(self).__name__} needs to know which weights are '
                "pretrained: build it with constructor='"
                "LayerwiseRollbackConstructor' and paramwise_cfg."
                "pretrained_prefixes (e.g. ('backbone',)).")
        self.anchor = self.spec.anchor_cls(
            self.optimizer,
            lambda g: g.get('layer_id') is not None,
            self.spec.state_key,
            anchor_dtype,
            owner=f'{self.spec.method} anchor')
        take_theta0_at_training_start(self)
        anchored = self.anchor.anchored
        if not self.anchor.trainable:
            raise ValueError(
                f'{type(self).__name__}: no trainable parameter is '
                'pretrained (all of paramwise_cfg.pretrained_prefixes are '
                'frozen); unfreeze them or use a plain OptimWrapper.')
        anchored_ids = {id(p) for _, p in anchored}
        new = [
            p for g in groups for p in g['params']
            if p.requires_grad and id(p) not in anchored_ids
        ]
        self._new_buckets = [[
            new[k] for k in idx
        ] for idx in group_by_device_and_dtype(new).values()]
        trained = [p for _, p in anchored if p.requires_grad]
        print_log(
            f'{self.spec.method}: alpha={self.alpha} on {len(trained)} '
            'pretrained tensors '
            f'({sum(p.numel() for p in trained):,} parameters, every '
            f'pretrained layer: the rollback_* keys are unused), beta='
            f'{self.beta} on {len(new)} new tensors.',
            logger='current',
            level=logging.INFO)

    def _at_training_start(self, model) -> None:
        """What the penalty takes from the model after ``theta0`` at
        training start (:mod:`olor_mm.engine.training_start`): nothing for
        L2-SP (EWC: the Fisher information)."""

    def step(self, **kwargs) -> None:
        """Add the penalty's gradient (times the loss scale under AMP:
        the gradients are still scaled), then the wrapper's clip and
        step."""
        self.anchor.ensure_theta0()  # used outside a Runner: first update
        self.anchor.take_new_groups()
        scale = (
            float(self.loss_scaler.get_scale()) if isinstance(
                self, AmpOptimWrapper) else 1.0)
        self.add_penalty_grad(scale=scale)
        super().step(**kwargs)

    @torch.no_grad()
    def add_penalty_grad(self, scale: float = 1.0) -> None:
        """``g += alpha (w - w0)`` on pretrained, ``g += beta w`` on new.

        ``scale`` multiplies both terms, for gradients that are still
        multiplied by an AMP loss scale.
        """
        if self.alpha:
            for i, b in enumerate(self.anchor.buckets):
                sel = [k for k, p in enumerate(b.params) if p.grad is not None]
                if not sel:
                    continue
                params = [b.params[k] for k in sel]
                diff = torch._foreach_sub(params, [b.anchors[k] for k in sel])
                weights = self._penalty_weights(i, sel)
                if weights is not None:
                    torch._foreach_mul_(diff, weights)
                torch._foreach_add_([p.grad for p in params],
                                    diff,
                                    alpha=self.alpha * scale)
        if self.beta:
            for params in self._new_buckets:
                params = [p for p in params if p.grad is not None]
                if params:
                    torch._foreach_add_([p.grad for p in params],
                                        params,
                                        alpha=self.beta * scale)

    def _penalty_weights(self, bucket: int, sel):
        """Per-tensor weights of the pull in ``bucket`` (its tensors
        ``sel``); None: 1 everywhere (L2-SP; EWC's Fisher)."""
        return None

    def penalty(self) -> float:
        """``Omega(w) = alpha/2 ||w_S - w0_S||^2 + beta/2 ||w_new||^2``."""
        self.anchor.ensure_theta0()
        with torch.no_grad():
            anchored = sum(
                float(squared_distance(b.params, b.anchors))
                for b in self.anchor.buckets)
            new = sum(float(squared_norm(ps)) for ps in self._new_buckets)
        return self.alpha / 2 * anchored + self.beta / 2 * new


@OPTIM_WRAPPERS.register_module()
class L2SPOptimWrapper(L2SPMixin, OptimWrapper):
    """OptimWrapper with the L2-SP penalty toward the pretrained weights.

    Before each real update the wrapped optimizer sees::

        g_S   <- g_S   + alpha * (w_S - w0_S)     (pretrained weights)
        g_new <- g_new + beta  * w_new            (the other trainable ones)

    the gradient of ``alpha/2 ||w_S - w0_S||^2 + beta/2 ||w_new||^2``, on
    every tensor that got a loss gradient, before gradient clipping (the
    penalty is part of the loss). Pretrained means what
    :class:`LayerwiseRollbackConstructor` numbered as pretrained (its
    ``pretrained_prefixes``; the group key ``layer_id`` is not None), so an
    OLOR config switches to L2-SP by changing ``type`` alone: the rollback
    keys of ``paramwise_cfg`` are then unused and no rollback is attached.
    ``w0_S`` is taken at training start (after ``load_from``), saved in the
    optimizer state under ``'l2sp_anchor'``, restored on resume (see
    :class:`~olor_mm.core.theta0.Anchor`).

    The optimizer's own weight decay still applies; the L2-SP paper replaces
    it (set ``weight_decay=0`` or ``decay_mult=0.`` to follow it). Under
    Adam-type optimizers the penalty's gradient is normalised like the loss
    gradient, as with L2 regularisation in Adam.

    Args:
        optimizer (Optimizer): The wrapped optimizer, built by
            ``LayerwiseRollbackConstructor``.
        alpha (float): Weight of the pull toward the pretrained weights.
            Defaults to 0.1 (Li et al.).
        beta (float): Weight of the L2 penalty on the new weights.
            Defaults to 0.01 (Li et al.).
        anchor_dtype (str | torch.dtype, optional): Dtype of the stored
            ``theta0``. Defaults to None, the parameters' dtype.
        **kwargs: ``accumulative_counts``, ``clip_grad`` of OptimWrapper.

    Examples:
        >>> optim_wrapper = dict(
        >>>     type='L2SPOptimWrapper',
        >>>     alpha=0.1,  # pull toward the pretrained weights
        >>>     beta=0.01,  # L2 on the new layers
        >>>     # _delete_: replace the base config's optimizer (an SGD's
        >>>     # momentum would otherwise merge into AdamW's arguments)
        >>>     optimizer=dict(
        >>>         _delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05),
        >>>     constructor='LayerwiseRollbackConstructor',
        >>>     paramwise_cfg=dict(pretrained_prefixes=('backbone',)))
    """


@OPTIM_WRAPPERS.register_module()
class AmpL2SPOptimWrapper(L2SPMixin, CPUAmpMixin, AmpOptimWrapper):
    """L2-SP under mixed precision (:class:`L2SPOptimWrapper`'s AMP twin).

    The gradients are still multiplied by the loss scale ``S`` when the
    penalty is added, so it adds ``S * alpha * (w_S - w0_S)`` and
    ``S * beta * w_new``: after the scaler unscales (before clipping, as
    MMEngine's AmpOptimWrapper does) the optimizer sees exactly the fp32
    rule. A step the scaler skips for inf/NaN gradients updates nothing.
    Runs on the CPU too (bfloat16, like ``AmpOLOROptimWrapper``).

    Args:
        loss_scale, dtype, use_fsdp: As MMEngine's AmpOptimWrapper.
        alpha, beta, anchor_dtype: See :class:`L2SPOptimWrapper`.

    Examples:
        >>> # L2SPOptimWrapper's example, with this type and a loss scale
        >>> # (``tools/train.py --amp`` makes this switch)
        >>> optim_wrapper = dict(type='AmpL2SPOptimWrapper',
        >>>                      loss_scale='dynamic', alpha=0.1, beta=0.01)
    """
