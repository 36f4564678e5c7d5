"""OLOR optimizer wrappers: one step learning, one step review.

After every real update of the wrapped optimizer, each parameter of a group
with ``rollback > 0`` is pulled back toward its pretrained value::

    theta_t = theta_hat_t + lam_eff * (theta0 - theta_hat_t)      (Eq. 6)
    lam_eff = lam_i * lr_t / lr_0     (scale_with_lr=True, the default)
    lam_eff = lam_i                   (scale_with_lr=False)

``lam_i`` is the group's ``rollback`` key (written by
:class:`LayerwiseRollbackConstructor`), ``lr_t`` the group's current learning
rate and ``lr_0`` its ``initial_lr``: set by MMEngine's parameter schedulers,
or, without a scheduler, by the wrapper to the group's lr when ``theta0`` is
taken (training start, after the Runner's ``auto_scale_lr``); it is saved with
the optimizer state, so resuming keeps it.
"""
import logging
from typing import Union

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from .rollback import rollback_
from .theta0 import Theta0Mixin


class RollbackMixin(Theta0Mixin):
    """Adds OLOR's rollback toward ``theta0`` to an MMEngine OptimWrapper.

    The anchored tensors are those of the groups with ``rollback > 0``
    (``theta0`` handling: :class:`~olor_mm.theta0.Theta0Mixin`). The wrapped
    optimizer's ``step`` is observed through a step post-hook, so the
    rollback runs exactly when the optimizer really updated: not on an
    accumulation-only iteration, not on a step the AMP loss scaler skips for
    inf/NaN gradients.
    """

    def _init_rollback(self, scale_with_lr: bool,
                       anchor_dtype: Union[str, torch.dtype, None]) -> None:
        self.scale_with_lr = bool(scale_with_lr)
        groups = self.optimizer.param_groups
        for gi, g in enumerate(groups):
            lam = g.get('rollback', 0.0)
            if not 0.0 <= lam <= 1.0:
                raise ValueError(
                    f'param group {gi} has rollback={lam}, outside [0, 1]; '
                    'set paramwise_cfg.rollback_max/rollback_min in [0, 1].')
        rolled = [(gi, p) for gi, g in enumerate(groups)
                  if g.get('rollback', 0.0) > 0 for p in g['params']
                  if p.requires_grad]
        if self.scale_with_lr:
            zero = sorted({gi for gi, _ in rolled if groups[gi]['lr'] == 0})
            if zero:
                raise ValueError(
                    f'param groups {zero[:5]} roll back but have lr=0, so '
                    'lam_eff = lam * lr_t / lr_0 is undefined; set a non-zero '
                    'lr (or lr_mult) or scale_with_lr=False.')
        if not rolled:
            print_log(
                f'{type(self).__name__}: no parameter group has rollback > 0, '
                'so nothing will roll back. Build it with '
                "constructor='LayerwiseRollbackConstructor' and "
                'rollback_max > 0, or use a plain OptimWrapper.',
                logger='current', level=logging.WARNING)
        self._init_theta0(rolled, anchor_dtype)

    @property
    def _rolled(self):
        """(group index, param) of every rolled-back tensor."""
        return self._anchored

    def step(self, **kwargs) -> None:
        """Wrapped optimizer's step, then the rollback if it updated."""
        self.ensure_theta0()  # used outside a Runner: first update
        before = self._updates
        super().step(**kwargs)
        if self._updates != before:
            self.rollback()

    def lr_ratios(self):
        """``lr_t / lr_0`` per param group (1.0 with scale_with_lr=False)."""
        if not self.scale_with_lr:
            return [1.0] * len(self.optimizer.param_groups)
        return super().lr_ratios()

    def lam_effs(self):
        """``lam_eff = lam_i * lr_t / lr_0`` per param group."""
        return [
            g.get('rollback', 0.0) * r
            for g, r in zip(self.optimizer.param_groups, self.lr_ratios())
        ]

    @torch.no_grad()
    def rollback(self) -> None:
        """``p <- p + lam_eff * (theta0 - p)`` on tensors that got a gradient.

        One multi-tensor pass per (device, dtype) bucket (see
        :func:`olor_mm.rollback.rollback_`). "Got a gradient" means
        ``p.grad is not None``: MMEngine zeroes gradients with
        ``set_to_none=True``, so a tensor outside this step's graph has none.
        """
        lam = self.lam_effs()
        for b in self._buckets:
            sel = [k for k, p in enumerate(b.params) if p.grad is not None]
            if len(sel) == len(b.params):
                rollback_(b.params, b.anchors, [lam[g] for g in b.groups])
            elif sel:
                rollback_([b.params[k] for k in sel],
                          [b.anchors[k] for k in sel],
                          [lam[b.groups[k]] for k in sel])


@OPTIM_WRAPPERS.register_module()
class OLOROptimWrapper(RollbackMixin, OptimWrapper):
    """OptimWrapper with OLOR's rollback toward the pretrained weights.

    After each real update ``theta_hat_t`` of the wrapped optimizer::

        theta_t = (1 - lam_eff) * theta_hat_t + lam_eff * theta0

    on every parameter of a group with ``rollback = lam_i > 0`` that got a
    gradient, where ``lam_eff = lam_i * lr_t / lr_0`` if ``scale_with_lr``
    else ``lam_i``. ``theta0`` is taken in :meth:`initialize_count_status`
    (after the Runner loaded the weights) or at the first update outside a
    Runner, saved by :meth:`state_dict` and restored by
    :meth:`load_state_dict`.

    Args:
        optimizer (Optimizer): The wrapped optimizer; its groups carry
            ``rollback`` (see :class:`LayerwiseRollbackConstructor`).
        scale_with_lr (bool): Scale lam by ``lr_t / lr_0`` per group, so
            warm-up and decay apply to the rollback too. Defaults to True.
        anchor_dtype (str | torch.dtype, optional): Keep ``theta0`` in this
            dtype, e.g. ``'bfloat16'`` to halve its memory next to float32
            weights (the rollback then rounds theta0 to bfloat16: see the
            README's performance section). Defaults to None, the
            parameters' dtype.
        **kwargs: ``accumulative_counts``, ``clip_grad`` of OptimWrapper.

    Examples:
        >>> custom_imports = dict(imports=['olor_mm'],
        >>>                       allow_failed_imports=False)
        >>> optim_wrapper = dict(
        >>>     type='OLOROptimWrapper',
        >>>     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        >>>     scale_with_lr=True,
        >>>     constructor='LayerwiseRollbackConstructor',
        >>>     paramwise_cfg=dict(rollback_max=0.01, rollback_min=0.0,
        >>>                        rollback_power=1.0,
        >>>                        pretrained_prefixes=('backbone',)))
    """

    def __init__(self,
                 optimizer,
                 scale_with_lr: bool = True,
                 anchor_dtype: Union[str, torch.dtype, None] = None,
                 **kwargs):
        super().__init__(optimizer=optimizer, **kwargs)
        self._init_rollback(scale_with_lr, anchor_dtype)


def _cpu_loss_scaler(loss_scale: Union[str, float, dict]):
    """``torch.amp.GradScaler('cpu')`` configured like AmpOptimWrapper's."""
    if loss_scale == 'dynamic':
        return torch.amp.GradScaler('cpu'), None
    if isinstance(loss_scale, float):
        return torch.amp.GradScaler('cpu', init_scale=loss_scale), loss_scale
    if isinstance(loss_scale, dict):
        return torch.amp.GradScaler('cpu', **loss_scale), None
    raise TypeError('loss_scale must be of type float, dict, or "dynamic", '
                    f'but got {loss_scale}')


@OPTIM_WRAPPERS.register_module()
class AmpOLOROptimWrapper(RollbackMixin, AmpOptimWrapper):
    """AmpOptimWrapper with OLOR's rollback (see :class:`OLOROptimWrapper`).

    A step the loss scaler skips (inf/NaN gradients) skips the rollback too.
    Unlike MMEngine's AmpOptimWrapper it also runs without CUDA: on the CPU
    it autocasts to bfloat16 (the only dtype CPU autocast supports) with a
    ``torch.amp.GradScaler('cpu')``, and refuses any other dtype rather
    than train silently in float32.

    Args:
        loss_scale, dtype, use_fsdp: As MMEngine's AmpOptimWrapper.
        scale_with_lr, anchor_dtype: See :class:`OLOROptimWrapper`.

    Examples:
        >>> optim_wrapper = dict(
        >>>     type='AmpOLOROptimWrapper', loss_scale='dynamic',
        >>>     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        >>>     constructor='LayerwiseRollbackConstructor',
        >>>     paramwise_cfg=dict(rollback_max=0.01))
    """

    def __init__(self,
                 optimizer,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 scale_with_lr: bool = True,
                 anchor_dtype: Union[str, torch.dtype, None] = None,
                 **kwargs):
        from mmengine.device import get_device
        if get_device() != 'cpu':
            super().__init__(loss_scale=loss_scale, dtype=dtype,
                             use_fsdp=use_fsdp, optimizer=optimizer, **kwargs)
        else:
            if dtype not in (None, 'bfloat16', torch.bfloat16):
                raise ValueError(
                    f'optim_wrapper.dtype={dtype!r}: without a GPU, mixed '
                    'precision runs on the CPU, where autocast supports only '
                    "bfloat16; set dtype='bfloat16' (or leave it unset), or "
                    'train on a GPU.')
            # MMEngine's AmpOptimWrapper asserts CUDA; set it up for the CPU.
            OptimWrapper.__init__(self, optimizer=optimizer, **kwargs)
            self.loss_scaler, self._scale_update_param = _cpu_loss_scaler(
                loss_scale)
            self.cast_dtype = torch.bfloat16
        self._init_rollback(scale_with_lr, anchor_dtype)
