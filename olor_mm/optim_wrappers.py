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
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from .rollback import group_by_device_and_dtype, rollback_

STATE_KEY = 'olor'


class _Bucket:
    """Rolled-back tensors of one (device, dtype), ready for _foreach ops."""

    __slots__ = ('params', 'anchors', 'groups', 'lams')

    def __init__(self, params, anchors, groups, lams):
        self.params: List[torch.Tensor] = params
        self.anchors: List[torch.Tensor] = anchors
        self.groups: List[int] = groups  # index of each tensor's group
        self.lams: List[float] = lams  # lam_i of each tensor


class RollbackMixin:
    """Adds OLOR's rollback toward ``theta0`` to an MMEngine OptimWrapper.

    The wrapped optimizer's ``step`` is observed through a step post-hook,
    so the rollback runs exactly when the optimizer really updated: not on
    an accumulation-only iteration, not on a step the AMP loss scaler skips
    for inf/NaN gradients.
    """

    def _init_rollback(self, scale_with_lr: bool,
                       anchor_dtype: Union[str, torch.dtype, None]) -> None:
        self.scale_with_lr = bool(scale_with_lr)
        if isinstance(anchor_dtype, str):
            anchor_dtype = getattr(torch, anchor_dtype, anchor_dtype)
        if anchor_dtype is not None and not (
                isinstance(anchor_dtype, torch.dtype)
                and anchor_dtype.is_floating_point):
            raise ValueError(
                f'optim_wrapper.anchor_dtype={anchor_dtype!r} is not a '
                "floating dtype; use None (the parameters' dtype) or e.g. "
                "'bfloat16' to halve theta0's memory.")
        self.anchor_dtype = anchor_dtype
        # (group index, param) for every tensor that rolls back
        self._rolled = [(gi, p)
                        for gi, g in enumerate(self.optimizer.param_groups)
                        if g.get('rollback', 0.0) > 0 for p in g['params']
                        if p.requires_grad]
        for gi, g in enumerate(self.optimizer.param_groups):
            lam = g.get('rollback', 0.0)
            if not 0.0 <= lam <= 1.0:
                raise ValueError(
                    f'param group {gi} has rollback={lam}, outside [0, 1]; '
                    'set paramwise_cfg.rollback_max/rollback_min in [0, 1].')
        if self.scale_with_lr:
            groups = self.optimizer.param_groups
            zero = sorted({gi for gi, _ in self._rolled
                           if groups[gi]['lr'] == 0})
            if zero:
                raise ValueError(
                    f'param groups {zero[:5]} roll back but have lr=0, so '
                    'lam_eff = lam * lr_t / lr_0 is undefined; set a non-zero '
                    'lr (or lr_mult) or scale_with_lr=False.')
        if not self._rolled:
            print_log(
                f'{type(self).__name__}: no parameter group has rollback > 0, '
                'so nothing will roll back. Build it with '
                "constructor='LayerwiseRollbackConstructor' and "
                'rollback_max > 0, or use a plain OptimWrapper.',
                logger='current', level=logging.WARNING)
        self._theta0: Optional[List[torch.Tensor]] = None
        self._buckets: List[_Bucket] = []
        self._updates = 0
        self.optimizer.register_step_post_hook(self._count_update)

    def _count_update(self, optimizer, args, kwargs) -> None:
        self._updates += 1

    # ----------------------------------------------------------- theta0
    @property
    def theta0(self) -> Optional[List[torch.Tensor]]:
        """Pretrained values of the rolled-back tensors, or None if untaken."""
        return self._theta0

    @torch.no_grad()
    def snapshot_theta0(self) -> None:
        """Take ``theta0`` from the parameters' current values.

        Also fixes ``lr_0``: a group without ``initial_lr`` (no scheduler)
        gets its current lr.
        """
        for g in self.optimizer.param_groups:
            g.setdefault('initial_lr', g['lr'])
        self._set_theta0([
            p.detach().to(self.anchor_dtype or p.dtype, copy=True)
            for _, p in self._rolled
        ])

    def _set_theta0(self, theta0: List[torch.Tensor]) -> None:
        self._theta0 = theta0
        self._buckets = []
        params = [p for _, p in self._rolled]
        groups = self.optimizer.param_groups
        for idx in group_by_device_and_dtype(params).values():
            gis = [self._rolled[k][0] for k in idx]
            self._buckets.append(
                _Bucket([params[k] for k in idx], [theta0[k] for k in idx],
                        gis, [float(groups[gi]['rollback']) for gi in gis]))

    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        """Runner hook after weights are loaded: take ``theta0`` here.

        The Runner calls this after ``init_weights`` and ``load_from`` /
        ``resume``, so ``theta0`` is the loaded pretrained weights, unless
        ``load_state_dict`` restored it from a checkpoint.
        """
        super().initialize_count_status(model, init_counts, max_counts)
        if self._theta0 is None:
            if init_counts > 0 and self._rolled:
                raise RuntimeError(
                    f'Training resumes at iteration {init_counts} but no '
                    'theta0 was restored: the checkpoint lacks the optimizer '
                    f'state or its "{STATE_KEY}" entry (resume_optimizer=False '
                    'or a checkpoint not written by an OLOR wrapper). Resume '
                    'from a checkpoint saved with OLOROptimWrapper, or start '
                    'a new fine-tune with load_from=<ckpt> and resume=False.')
            self.snapshot_theta0()

    # ------------------------------------------------------------ step
    def step(self, **kwargs) -> None:
        """Wrapped optimizer's step, then the rollback if it updated."""
        if self._theta0 is None:  # used outside a Runner: first update
            self.snapshot_theta0()
        before = self._updates
        super().step(**kwargs)
        if self._updates != before:
            self.rollback()

    def lr_ratios(self) -> List[float]:
        """``lr_t / lr_0`` per param group (1.0 with scale_with_lr=False)."""
        groups = self.optimizer.param_groups
        if not self.scale_with_lr:
            return [1.0] * len(groups)
        lr0 = [g.get('initial_lr', g['lr']) for g in groups]
        return [g['lr'] / l0 if l0 else 0.0 for g, l0 in zip(groups, lr0)]

    @torch.no_grad()
    def rollback(self) -> None:
        """``p <- p + lam_eff * (theta0 - p)`` on tensors that got a gradient.

        One multi-tensor pass per (device, dtype) bucket (see
        :func:`olor_mm.rollback.rollback_`). "Got a gradient" means
        ``p.grad is not None``: MMEngine zeroes gradients with
        ``set_to_none=True``, so a tensor outside this step's graph has none.
        """
        ratios = self.lr_ratios()
        for b in self._buckets:
            sel = [k for k, p in enumerate(b.params) if p.grad is not None]
            if len(sel) == len(b.params):
                weights = [lam * ratios[g] for lam, g in zip(b.lams, b.groups)]
                rollback_(b.params, b.anchors, weights)
            elif sel:
                rollback_([b.params[k] for k in sel],
                          [b.anchors[k] for k in sel],
                          [b.lams[k] * ratios[b.groups[k]] for k in sel])

    # ----------------------------------------------------------- state
    def _param_index(self) -> Dict[int, int]:
        """id(param) -> index in torch's optimizer state_dict numbering."""
        index: Dict[int, int] = {}
        for g in self.optimizer.param_groups:
            for p in g['params']:
                index.setdefault(id(p), len(index))
        return index

    def state_dict(self) -> dict:
        """The wrapped state plus ``'olor': {'theta0': {index: tensor}}``."""
        state = super().state_dict()
        theta0 = None
        if self._theta0 is not None:
            index = self._param_index()
            theta0 = {
                index[id(p)]: t
                for (_, p), t in zip(self._rolled, self._theta0)
            }
        state[STATE_KEY] = dict(theta0=theta0)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the wrapped state and ``theta0``.

        Raises:
            KeyError: if ``state_dict`` has no saved ``theta0`` entry.
            ValueError: if the saved ``theta0`` does not fit the model.
        """
        state_dict = dict(state_dict)
        if STATE_KEY not in state_dict:
            raise KeyError(
                f'{type(self).__name__}.load_state_dict: the optimizer state '
                f'has no "{STATE_KEY}" entry, so theta0 (the pretrained '
                'weights to roll back to) cannot be restored. Resume from a '
                'checkpoint written by an OLOR wrapper, or start a new '
                'fine-tune from these weights with load_from=<ckpt> and '
                'resume=False.')
        saved = state_dict.pop(STATE_KEY)['theta0']
        super().load_state_dict(state_dict)
        if saved is None:
            return
        index = self._param_index()
        want = {index[id(p)]: p for _, p in self._rolled}
        if set(saved) != set(want):
            raise ValueError(
                f'saved theta0 covers {len(saved)} tensors, this model rolls '
                f'back {len(want)} (indices differ: e.g. '
                f'{sorted(set(saved) ^ set(want))[:5]}); the model or '
                'paramwise_cfg changed since the checkpoint was written.')
        theta0 = []
        for k, p in want.items():
            t = saved[k]
            if t.shape != p.shape:
                raise ValueError(
                    f'saved theta0 of parameter #{k} has shape '
                    f'{tuple(t.shape)}, the model\'s has {tuple(p.shape)}; '
                    'the checkpoint is of another model.')
            theta0.append(t.to(device=p.device,
                               dtype=self.anchor_dtype or p.dtype, copy=True))
        self._set_theta0(theta0)


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
