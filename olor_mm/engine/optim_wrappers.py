"""OLOROptimWrapper, AmpOLOROptimWrapper: MMEngine names over the rollback.

The rollback itself lives on the torch optimizer (:mod:`olor_mm.core.attach`):
``LayerwiseRollbackConstructor`` attaches it whatever the wrapper type, so
``OptimWrapper``, ``AmpOptimWrapper`` and these two roll back identically.
The documented spelling is ``type='OptimWrapper'`` with the constructor and
every OLOR key in ``paramwise_cfg``. These wrappers are thin aliases kept
for the names users know: they attach the rollback themselves when built
without the constructor, forward the deprecated wrapper-level keys
``scale_with_lr`` / ``anchor_dtype`` with a warning, and expose the
rollback's state (``theta0``, ``lam_effs()`` ...); ``AmpOLOROptimWrapper``
also runs on the CPU (bfloat16). With nothing to roll back each behaves
exactly as its MMEngine parent.

After every real update ``theta_hat_t`` of the wrapped optimizer::

    theta_t = theta_hat_t + lam_eff * (theta0 - theta_hat_t)      (Eq. 6)
    lam_eff = lam_i * lr_t / lr_0     (scale_with_lr=True, the default)
"""
import logging
from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from ..core.attach import RollbackHandle, find_rollback
from ..core.theta0 import AnchorViewsMixin, parse_anchor_dtype
from .amp import CPUAmpMixin
from .training_start import take_theta0_at_training_start

#: keys of the rollback that older configs wrote at the ``optim_wrapper``
#: level (for ``OLOROptimWrapper``); their place is ``paramwise_cfg``.
DEPRECATED_WRAPPER_KEYS = ('scale_with_lr', 'anchor_dtype')


def warn_deprecated_wrapper_key(key: str, value) -> None:
    """Say that ``optim_wrapper.<key>`` is forwarded, and where it goes."""
    print_log(
        f'optim_wrapper.{key}={value!r} is deprecated: write '
        f'optim_wrapper.paramwise_cfg.{key} (the constructor configures the '
        'rollback under any wrapper type); it is forwarded there.',
        logger='current',
        level=logging.WARNING)


def schedulable_rollback(optim_wrapper) -> None:
    """Let an MMEngine param scheduler reach ``rollback`` (lam_i).

    ``OptimWrapper.param_groups`` lists an extra group for logging
    (``base_param_settings``, the optimizer's defaults) that has no
    ``rollback``: ``LinearParamScheduler(param_name='rollback')`` stopped on
    it with ``KeyError: 'rollback'``. It gets ``rollback=0``; the optimizer's
    groups are scaled as they are.
    """
    base = getattr(optim_wrapper, 'base_param_settings', None)
    if isinstance(base, dict):
        base.setdefault('rollback', 0.0)


def guard_training_start(optim_wrapper) -> None:
    """What ``LayerwiseRollbackConstructor`` adds to any wrapper it builds
    with a rollback (``OptimWrapper``, ``AmpOptimWrapper``, a user's):
    theta0 at training start (:mod:`olor_mm.engine.training_start`) and an
    ``rollback`` MMEngine's param schedulers can reach."""
    schedulable_rollback(optim_wrapper)
    take_theta0_at_training_start(optim_wrapper)


class RollbackWrapperMixin(AnchorViewsMixin):
    """The shell: read-only views of the rollback, theta0 at training start
    (:mod:`olor_mm.engine.training_start`).

    The rollback is configured by ``LayerwiseRollbackConstructor``'s
    ``paramwise_cfg``. ``scale_with_lr`` / ``anchor_dtype`` given to the
    wrapper itself are the deprecated spelling: they are forwarded to the
    rollback (attached here when the optimizer has none yet) with a warning,
    and one that contradicts an already attached rollback is an error.
    """

    def __init__(self, optimizer, **kwargs):
        forwarded = {
            k: kwargs.pop(k)
            for k in DEPRECATED_WRAPPER_KEYS if k in kwargs
        }
        super().__init__(optimizer=optimizer, **kwargs)
        self._init_rollback(forwarded)

    def _init_rollback(self, forwarded: dict) -> None:
        for key, value in forwarded.items():
            warn_deprecated_wrapper_key(key, value)
        handle = find_rollback(self.optimizer)
        attached_here = handle is None
        if attached_here:
            handle = RollbackHandle(
                self.optimizer, warn_if_inert=False, **forwarded)
        for key, value in forwarded.items():
            if key == 'anchor_dtype':
                value = parse_anchor_dtype(value)
            if value != getattr(handle, key):
                raise ValueError(
                    f'optim_wrapper.{key}={value!r} contradicts the '
                    f'rollback already attached to the optimizer '
                    f'({key}={getattr(handle, key)!r}, from paramwise_cfg or '
                    f'attach_rollback); set it once, as '
                    f'optim_wrapper.paramwise_cfg.{key}.')
        self.rollback_handle = handle
        guard_training_start(self)
        if attached_here and not handle.active:
            print_log(
                f'{type(self).__name__}: no parameter group has rollback > 0, '
                'so nothing will roll back. Build it with '
                "constructor='LayerwiseRollbackConstructor' and "
                'rollback_max > 0, or use a plain OptimWrapper.',
                logger='current',
                level=logging.WARNING)

    # read-only views of the rollback (tools, hooks, tests)
    @property
    def scale_with_lr(self) -> bool:
        return self.rollback_handle.scale_with_lr

    @property
    def anchor_dtype(self) -> Optional[torch.dtype]:
        return self.rollback_handle.anchor_dtype

    @property
    def anchor(self) -> RollbackHandle:
        """The rollback (an :class:`~olor_mm.core.theta0.Anchor`)."""
        return self.rollback_handle

    def snapshot_theta0(self) -> None:
        """Take ``theta0`` now (what training start does)."""
        self.rollback_handle.snapshot()

    def lr_ratios(self):
        """``lr_t / lr_0`` per param group (1.0 where nothing scales)."""
        return self.rollback_handle.lr_ratios()

    def lam_effs(self):
        """``lam_eff = lam_i * lr_t / lr_0`` per param group."""
        return self.rollback_handle.lam_effs()


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
    """AmpOptimWrapper with OLOR's rollback (see :class:`OLOROptimWrapper`).

    A step the loss scaler skips (inf/NaN gradients) never reaches the
    optimizer's step, so it skips the rollback too. Unlike MMEngine's
    AmpOptimWrapper it also runs without CUDA (bfloat16 on the CPU, see
    :class:`CPUAmpMixin`).

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
