"""OLOROptimWrapper, AmpOLOROptimWrapper: the two wrappers olor-mm registers.

The anchored method lives on the torch optimizer (:mod:`olor_mm.core`):
``LayerwiseRollbackConstructor`` attaches it whatever the wrapper type, so
MMEngine's ``OptimWrapper`` and ``AmpOptimWrapper`` roll back as these do.
The documented spelling is ``type='OptimWrapper'`` with the constructor.
These two are kept for what only they add:

- ``OLOROptimWrapper``: the name the README and older configs use, the
  anchor's views (``theta0``, ``lam_effs()`` ...) for tools, and, built
  without the constructor, OLOR's rollback attached to groups that carry
  ``rollback`` (the deprecated wrapper-level ``scale_with_lr`` /
  ``anchor_dtype`` are forwarded to it with a warning);
- ``AmpOLOROptimWrapper``: MMEngine's ``AmpOptimWrapper`` that also runs
  without a GPU (bfloat16 on the CPU, :class:`~.amp.CPUAmpMixin`), for any
  anchored method (``tools/train.py --amp`` on a CPU picks it).

With nothing anchored each behaves exactly as its MMEngine parent. After
every real update ``theta_hat_t`` of an OLOR-anchored optimizer::

    theta_t = theta_hat_t + lam_eff * (theta0 - theta_hat_t)      (Eq. 6)
    lam_eff = lam_i * lr_t / lr_0     (scale_with_lr=True, the default)
"""
import logging
from typing import List, Optional

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from ..core.attach import RollbackHandle, find_rollback
from ..core.theta0 import find_anchor, parse_anchor_dtype
from . import deprecations
from .amp import CPUAmpMixin


class AnchorViews:
    """Read-only views of the anchor on the wrapped optimizer (OLOR's
    rollback, L2-SP or EWC), for tools, hooks and tests."""

    @property
    def anchor(self):
        """The anchor (an :class:`~olor_mm.core.theta0.Anchor`), or None."""
        return find_anchor(self.optimizer)

    @property
    def rollback_handle(self) -> Optional[RollbackHandle]:
        """OLOR's rollback, or None."""
        return find_rollback(self.optimizer)

    @property
    def theta0(self) -> Optional[List[torch.Tensor]]:
        """``theta0`` (the paper's; ``w0_S`` in L2-SP): the pretrained values
        of the anchored tensors, or None before the first step."""
        return self.anchor.theta0

    @property
    def anchored_params(self) -> List[torch.Tensor]:
        """The anchored tensors, in the order of :attr:`theta0`."""
        return self.anchor.anchored_params

    @property
    def scale_with_lr(self) -> bool:
        return self.rollback_handle.scale_with_lr

    @property
    def anchor_dtype(self) -> Optional[torch.dtype]:
        return self.anchor.anchor_dtype

    def snapshot_theta0(self) -> None:
        """Take ``theta0`` now (what the first step does)."""
        self.anchor.snapshot()

    def lr_ratios(self):
        """``lr_t / lr_0`` per param group (1.0 where nothing scales)."""
        return self.rollback_handle.lr_ratios()

    def lam_effs(self):
        """``lam_eff = lam_i * lr_t / lr_0`` per param group."""
        return self.rollback_handle.lam_effs()


class RollbackWrapperMixin(AnchorViews):
    """Attaches OLOR's rollback when the constructor did not (the wrapper
    built from groups carrying ``rollback``); forwards the deprecated
    ``scale_with_lr`` / ``anchor_dtype`` given to the wrapper."""

    def __init__(self, optimizer, **kwargs):
        forwarded = {
            k: kwargs.pop(k)
            for k in deprecations.ROLLBACK_KEYS if k in kwargs
        }
        super().__init__(optimizer=optimizer, **kwargs)
        for key, value in forwarded.items():
            deprecations.warn(f'optim_wrapper.{key}={value!r}',
                              f'optim_wrapper.paramwise_cfg.{key}')
        anchor = find_anchor(self.optimizer)
        if anchor is None:
            anchor = RollbackHandle(
                self.optimizer, warn_if_inert=False, **forwarded)
            if not anchor.active:
                print_log(
                    f'{type(self).__name__}: no parameter group has '
                    'rollback > 0, so nothing will roll back. Build it with '
                    "constructor='LayerwiseRollbackConstructor' and "
                    'rollback_max > 0, or use a plain OptimWrapper.',
                    logger='current',
                    level=logging.WARNING)
            return
        for key, value in forwarded.items():
            have = getattr(anchor, key, None)
            if key == 'anchor_dtype':
                value = parse_anchor_dtype(value)
            if value != have:
                raise ValueError(
                    f'optim_wrapper.{key}={value!r} contradicts the anchor '
                    f'already attached to the optimizer ({key}={have!r}, '
                    'from paramwise_cfg or attach_rollback); set it once, as '
                    f'optim_wrapper.paramwise_cfg.{key}.')


@OPTIM_WRAPPERS.register_module()
class OLOROptimWrapper(RollbackWrapperMixin, OptimWrapper):
    """OptimWrapper with OLOR's rollback toward the pretrained weights.

    After each real update ``theta_hat_t`` of the wrapped optimizer::

        theta_t = (1 - lam_eff) * theta_hat_t + lam_eff * theta0

    on every parameter of a group with ``rollback = lam_i > 0`` that got a
    gradient, where ``lam_eff = lam_i * lr_t / lr_0`` if ``scale_with_lr``
    else ``lam_i``. The rollback is attached to the torch optimizer
    (:func:`olor_mm.attach_rollback`), so the documented spelling, a plain
    ``OptimWrapper`` built by ``LayerwiseRollbackConstructor``, rolls back
    identically; this name is kept for the configs that use it.

    Args:
        optimizer (Optimizer): The wrapped optimizer; its groups carry
            ``rollback`` (see :class:`LayerwiseRollbackConstructor`).
        **kwargs: ``accumulative_counts``, ``clip_grad`` of OptimWrapper;
            ``scale_with_lr`` / ``anchor_dtype`` (deprecated here: write
            them in ``paramwise_cfg``) are forwarded to the rollback.

    Examples:
        >>> custom_imports = dict(imports=['olor_mm'],
        >>>                       allow_failed_imports=False)
        >>> optim_wrapper = dict(
        >>>     type='OLOROptimWrapper',  # same as type='OptimWrapper'
        >>>     # _delete_: replace the base config's optimizer (an SGD's
        >>>     # momentum would otherwise merge into AdamW's arguments)
        >>>     optimizer=dict(
        >>>         _delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05),
        >>>     constructor='LayerwiseRollbackConstructor',
        >>>     paramwise_cfg=dict(rollback_max=0.01, rollback_min=0.0,
        >>>                        rollback_power=1.0, scale_with_lr=True,
        >>>                        pretrained_prefixes=('backbone',)))
    """


@OPTIM_WRAPPERS.register_module()
class AmpOLOROptimWrapper(RollbackWrapperMixin, CPUAmpMixin, AmpOptimWrapper):
    """AmpOptimWrapper that also runs without CUDA (see
    :class:`OLOROptimWrapper`), for any anchored method.

    A step the loss scaler skips (inf/NaN gradients) never reaches the
    optimizer's step, so it skips the rollback (and a penalty) too. Unlike
    MMEngine's AmpOptimWrapper it also runs without a GPU: bfloat16 on the
    CPU (:class:`~olor_mm.engine.amp.CPUAmpMixin`).

    Args:
        loss_scale, dtype, use_fsdp: As MMEngine's AmpOptimWrapper.
        **kwargs: See :class:`OLOROptimWrapper`.

    Examples:
        >>> optim_wrapper = dict(
        >>>     type='AmpOLOROptimWrapper', loss_scale='dynamic',
        >>>     # _delete_: replace the base config's optimizer (an SGD's
        >>>     # momentum would otherwise merge into AdamW's arguments)
        >>>     optimizer=dict(
        >>>         _delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05),
        >>>     constructor='LayerwiseRollbackConstructor',
        >>>     paramwise_cfg=dict(rollback_max=0.01))
    """
