"""theta0: the pretrained weights a fine-tuning is anchored to.

Shared by every anchored method of olor-mm (OLOR's rollback, L2-SP's
penalty): which tensors are anchored, when ``theta0`` is taken, how it is
saved in the optimizer state and restored on resume, and its (device, dtype)
buckets for the multi-tensor ops.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from .rollback import group_by_device_and_dtype

#: key of olor-mm's entry in the optimizer state dict
STATE_KEY = 'olor'


class Bucket:
    """Anchored tensors of one (device, dtype), ready for _foreach ops."""

    __slots__ = ('params', 'anchors', 'groups')

    def __init__(self, params, anchors, groups):
        self.params: List[torch.Tensor] = params
        self.anchors: List[torch.Tensor] = anchors
        self.groups: List[int] = groups  # index of each tensor's group


def parse_anchor_dtype(
        anchor_dtype: Union[str, torch.dtype, None]) -> Optional[torch.dtype]:
    """``'bfloat16'`` -> ``torch.bfloat16``; None stays None."""
    if isinstance(anchor_dtype, str):
        anchor_dtype = getattr(torch, anchor_dtype, anchor_dtype)
    if anchor_dtype is not None and not (
            isinstance(anchor_dtype, torch.dtype)
            and anchor_dtype.is_floating_point):
        raise ValueError(
            f'optim_wrapper.anchor_dtype={anchor_dtype!r} is not a '
            "floating dtype; use None (the parameters' dtype) or e.g. "
            "'bfloat16' to halve theta0's memory.")
    return anchor_dtype


class Theta0Mixin:
    """Keeps ``theta0`` for the tensors an MMEngine OptimWrapper anchors.

    A subclass says which tensors are anchored (``_init_theta0``'s
    ``anchored``) and uses ``self._buckets`` once ``theta0`` exists.
    ``theta0`` is taken in :meth:`initialize_count_status`, which the
    Runner calls after ``load_from`` / ``resume`` (so it is the loaded
    pretrained weights), or by :meth:`ensure_theta0` at the first update
    outside a Runner. It is saved as ``state['olor']['theta0']`` (a dict from
    torch's parameter index to tensor) and restored by
    :meth:`load_state_dict`.

    The wrapped optimizer's real updates are counted through a step
    post-hook (``self._updates``): an accumulation-only iteration or a step
    the AMP loss scaler skips does not count.
    """

    def _init_theta0(self, anchored: List[Tuple[int, torch.Tensor]],
                     anchor_dtype: Union[str, torch.dtype, None]) -> None:
        """``anchored``: (group index, parameter) of every anchored tensor."""
        self.anchor_dtype = parse_anchor_dtype(anchor_dtype)
        self._anchored = anchored
        self._theta0: Optional[List[torch.Tensor]] = None
        self._buckets: List[Bucket] = []
        self._updates = 0
        self.optimizer.register_step_post_hook(self._count_update)

    def _count_update(self, optimizer, args, kwargs) -> None:
        self._updates += 1

    @property
    def anchored_params(self) -> List[torch.Tensor]:
        """The anchored parameters, in the order of :attr:`theta0`."""
        return [p for _, p in self._anchored]

    @property
    def theta0(self) -> Optional[List[torch.Tensor]]:
        """Pretrained values of the anchored tensors, or None if untaken."""
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
            for _, p in self._anchored
        ])

    def ensure_theta0(self) -> None:
        """Take ``theta0`` now if nothing took or restored it yet."""
        if self._theta0 is None:
            self.snapshot_theta0()

    def _set_theta0(self, theta0: List[torch.Tensor]) -> None:
        self._theta0 = theta0
        self._buckets = []
        params = self.anchored_params
        for idx in group_by_device_and_dtype(params).values():
            self._buckets.append(
                Bucket([params[k] for k in idx], [theta0[k] for k in idx],
                       [self._anchored[k][0] for k in idx]))

    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        """Runner hook after weights are loaded: take ``theta0`` here.

        The Runner calls this after ``init_weights`` and ``load_from`` /
        ``resume``, so ``theta0`` is the loaded pretrained weights, unless
        ``load_state_dict`` restored it from a checkpoint.
        """
        super().initialize_count_status(model, init_counts, max_counts)
        if self._theta0 is None:
            if init_counts > 0 and self._anchored:
                raise RuntimeError(
                    f'Training resumes at iteration {init_counts} but no '
                    'theta0 was restored: the checkpoint lacks the optimizer '
                    f'state or its "{STATE_KEY}" entry '
                    '(resume_optimizer=False or a checkpoint not written by '
                    'an olor-mm wrapper). Resume from a checkpoint saved '
                    f'with {type(self).__name__}, or start a new fine-tune '
                    'with load_from=<ckpt> and resume=False.')
            self.snapshot_theta0()

    def lr_ratios(self) -> List[float]:
        """``lr_t / lr_0`` per param group."""
        groups = self.optimizer.param_groups
        lr0 = [g.get('initial_lr', g['lr']) for g in groups]
        return [g['lr'] / l0 if l0 else 0.0 for g, l0 in zip(groups, lr0)]

    # ----------------------------------------------------------- state
    def _param_index(self) -> Dict[int, int]:
        """id(param) -> index in torch's optimizer state_dict numbering."""
        index: Dict[int, int] = {}
        for g in self.optimizer.param_groups:
            for p in g['params']:
                index.setdefault(id(p), len(index))
        return index

    def theta0_state(self) -> dict:
        """``{'theta0': {index: tensor}}`` (None before theta0 is taken)."""
        theta0 = None
        if self._theta0 is not None:
            index = self._param_index()
            theta0 = {
                index[id(p)]: t
                for (_, p), t in zip(self._anchored, self._theta0)
            }
        return dict(theta0=theta0)

    def state_dict(self) -> dict:
        """The wrapped state plus ``'olor': {'theta0': {index: tensor}}``."""
        state = super().state_dict()
        state[STATE_KEY] = self.theta0_state()
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
                'weights the fine-tuning is anchored to) cannot be restored. '
                'Resume from a checkpoint written by an olor-mm wrapper, or '
                'start a new fine-tune from these weights with '
                'load_from=<ckpt> and resume=False.')
        saved = state_dict.pop(STATE_KEY)['theta0']
        super().load_state_dict(state_dict)
        if saved is None:
            return
        index = self._param_index()
        want = {index[id(p)]: p for _, p in self._anchored}
        if set(saved) != set(want):
            raise ValueError(
                f'saved theta0 covers {len(saved)} tensors, this model '
                f'anchors {len(want)} (indices differ: e.g. '
                f'{sorted(set(saved) ^ set(want))[:5]}); the model, the '
                'paramwise_cfg or the optim_wrapper type changed since the '
                'checkpoint was written.')
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
