"""OLOR's rollback attached to a torch optimizer (plain torch, no MMEngine).

The paper folds the "review" into the optimizer update; so does this
module. :func:`attach_rollback` registers, on any ``torch.optim.Optimizer``
whose param groups carry ``rollback`` (``lam_i``, e.g. from
:func:`olor_mm.layerwise_rollback_groups`):

- a step pre-hook that takes ``theta0`` of each tensor just before its
  first update, unless ``load_state_dict()`` restored it (the weights are
  loaded by then, whatever the order a runner loaded them in);
- a step post-hook that, after every real update ``theta_hat_t``, pulls
  each anchored tensor the optimizer updated back toward ``theta0``::

      theta_t = theta_hat_t + lam_eff * (theta0 - theta_hat_t)   (Eq. 6)
      lam_eff = lam_i * lr_t / lr_0      (scale_with_lr=True, the default)
      lam_eff = lam_i                    (scale_with_lr=False)

  ``lr_t`` is the group's current lr and ``lr_0`` the largest lr the group
  has had: its ``initial_lr`` (written by schedulers; without one, the
  group's lr when ``theta0`` is taken) or any higher lr since (OneCycle's
  ramp, a warm-up written by hand, a restart to a higher lr; kept in the
  group as ``rollback_lr_peak``). So ``lam_eff <= lam_i <= 1`` for every
  schedule: Eq. 6 stays a lerp toward theta0 and never throws a weight past
  it. Warm-up from below ``initial_lr`` and decay scale the rollback down;
  while the lr rises above every lr before it, ``lam_eff = lam_i``.
  "Updated" is torch's notion: a tensor without a gradient is skipped; one
  whose step may leave it unchanged (an all-zero gradient, as
  ``zero_grad(set_to_none=False)`` leaves on a frozen layer; a sparse
  gradient; ``requires_grad=False``) rolls back only where the step
  changed it. bfloat16 / float16 weights roll back with their rounding
  carried (:func:`~olor_mm.core.rollback.rollback_`);
- state-dict hooks that save ``theta0`` in ``optimizer.state_dict()`` as
  per-parameter state (``'olor_rollback.theta0'``, beside the moments, so
  engines that shard or gather the optimizer state carry it too) and
  restore it in ``load_state_dict()`` (:class:`~olor_mm.core.theta0.Anchor`).

Every wrapper and tool that calls ``optimizer.step()`` therefore rolls back:
MMEngine's ``OptimWrapper`` and ``AmpOptimWrapper``, upstream
``tools/train.py --amp``, a timm or Lightning loop. A step that gradient
accumulation does not take never calls ``optimizer.step()``; a step the AMP
loss scaler skips for inf/NaN gradients either never calls it or, for a
fused optimizer, calls it with ``found_inf`` set, and the rollback skips
it too.

Example:
    >>> from olor_mm import layerwise_rollback_groups, attach_rollback
    >>> groups = layerwise_rollback_groups(model, ('backbone',),
    ...                                    rollback_max=0.01)
    >>> opt = torch.optim.AdamW(groups, lr=1e-4, weight_decay=0.05)
    >>> handle = attach_rollback(opt)   # theta0 at the first step
    >>> ...                             # train as usual
    >>> handle.remove()                 # back to the plain optimizer
"""
import logging
import weakref
from typing import List, Optional, Union

import torch

from .resume_checks import TUNABLE_KEYS, edited_keys
from .rollback import as_real, is_low_precision, rollback_
from .theta0 import Anchor, find_anchor

logger = logging.getLogger(__name__)  # forwarded to MMEngine's, if there

#: key of the rollback's entry in ``optimizer.state_dict()``
STATE_KEY = 'olor_rollback'
#: param-group key of the largest lr a rolled-back group has had above its
#: ``initial_lr`` (``lr_0`` of ``scale_with_lr``; absent until then)
PEAK_KEY = 'rollback_lr_peak'

__all__ = ['attach_rollback', 'find_rollback', 'RollbackHandle', 'STATE_KEY']


def _rolls_back(group: dict) -> bool:
    return group.get('rollback', 0.0) > 0


class RollbackHandle(Anchor):
    """OLOR's rollback on one optimizer; made by :func:`attach_rollback`.

    Attributes:
        scale_with_lr (bool): Whether ``lam_eff = lam_i * lr_t / lr_0``.
        anchor_dtype (torch.dtype | None): dtype ``theta0`` is kept in.
    """

    def __init__(self,
                 optimizer,
                 scale_with_lr: bool = True,
                 anchor_dtype: Union[str, torch.dtype, None] = None,
                 warn_if_inert: bool = True,
                 from_current_weights: bool = False,
                 setup: Optional[dict] = None):
        if not isinstance(optimizer, torch.optim.Optimizer):
            inner = getattr(optimizer, 'optimizer', None)
            hint = (' Attach to the torch optimizer it wraps: '
                    'attach_rollback(wrapper.optimizer).' if isinstance(
                        inner, torch.optim.Optimizer) else
                    ' Attach to the torch optimizer inside it, before '
                    'wrapping.')
            raise TypeError(
                f'attach_rollback needs a torch.optim.Optimizer (the '
                'rollback runs on its step and state-dict hooks), got '
                f'{type(optimizer).__name__}.' + hint)
        if not isinstance(scale_with_lr, bool):
            raise TypeError(
                f'scale_with_lr={scale_with_lr!r} must be True or False '
                '(whether the rollback follows lr_t / lr_0).')
        self.scale_with_lr = scale_with_lr
        #: id(param) -> float32 rounding carried for low-precision weights
        self._residual = {}
        #: per bucket of this step, ``{k: value before the step}`` of the
        #: tensors the step may leave unchanged (set by the pre-hook)
        self._unsure = None
        #: id(param) -> weak reference to its gradient at the last step
        self._grads = {}
        check_groups(optimizer.param_groups)
        super().__init__(
            optimizer,
            _rolls_back,
            STATE_KEY,
            anchor_dtype,
            owner='OLOR rollback',
            from_current_weights=from_current_weights,
            setup=None if setup is None else dict(
                setup, scale_with_lr=scale_with_lr))
        self._handles.append(
            optimizer.register_step_post_hook(self._post_step))
        if warn_if_inert and not self.active:
            logger.warning(
                'attach_rollback: no param group has rollback > 0, so '
                'nothing will roll back (build the groups with '
                'layerwise_rollback_groups or LayerwiseRollbackConstructor '
                'and rollback_max > 0).')

    # ------------------------------------------------------------- hooks
    def _on_take(self, groups: List[dict]) -> None:
        """``lr_0`` of the groups whose theta0 is taken now: a group
        without ``initial_lr`` (no scheduler) gets its current lr, so a
        later ``auto_scale_lr`` or decay scales lam only from here on."""
        check_groups(groups)
        for g in groups:
            g.setdefault('initial_lr', g['lr'])

    def _selected_late(self, gi: int, group: dict) -> None:
        raise RuntimeError(
            f'{self.owner}: param group {gi} rolls back '
            f"(rollback={group['rollback']}) but had rollback 0 when it "
            'first stepped, so it has no theta0 (its weights now are '
            'fine-tuned ones). Give it rollback > 0 from the start (a '
            'warm-up of lam from a small value, e.g. 1e-6, rather than '
            'from 0).')

    @torch.no_grad()
    def _before_update(self, layout, kwargs: dict) -> None:
        """Keep the value before the step of each tensor the step may leave
        unchanged (:meth:`rollback` compares): a sparse gradient, a tensor
        with ``requires_grad=False``, an all-zero gradient kept across
        steps. A gradient kept across steps (``zero_grad(set_to_none=
        False)``: the same tensor as at the last step) is all zero when
        the backward did not reach the tensor (a layer frozen mid-run, a
        branch unused in this step): those get one norm pass. A fresh
        gradient is one a backward wrote: its tensor takes part in the step
        as torch's optimizers count it (they step every tensor with a
        gradient)."""
        unsure = []
        kept_grads = self._grads
        for b in layout.buckets:
            keep, dense = [], []
            for k, p in enumerate(b.params):
                if p.shape != b.anchors[k].shape:
                    self._reshaped(p, b.anchors[k], b.groups[k])
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse or not p.requires_grad:
                    keep.append(k)
                    continue
                ref = kept_grads.get(id(p))
                if ref is not None and ref() is g:
                    dense.append(k)
                kept_grads[id(p)] = weakref.ref(g)
            if dense:
                # a norm that underflows to 0 only sends the tensor to the
                # comparison, which is exact either way
                norms = torch._foreach_norm([b.params[k].grad for k in dense])
                zero = torch.stack(norms).eq(0).nonzero().flatten().tolist()
                keep += [dense[z] for z in zero]
            unsure.append({k: b.params[k].detach().clone() for k in keep})
        self._unsure = unsure

    def _reshaped(self, p: torch.Tensor, theta0: torch.Tensor,
                  gi: int) -> None:
        name = (self.param_names
                or {}).get(id(p), f'a rolled-back tensor of param group {gi}')
        raise RuntimeError(
            f'{self.owner}: {name} has shape {tuple(p.shape)} now and its '
            f'theta0 {tuple(theta0.shape)}: its shape changed after theta0 '
            'was taken (p.data = ..., set_, a resize), so it has no '
            'pretrained value to roll back to; nothing was updated in this '
            'step. Keep its shape, or make the new weight a new '
            'nn.Parameter and add it with add_param_group(..., '
            'rollback=lam), which anchors it to its values when it joins.')

    def _post_step(self, optimizer, args, kwargs) -> None:
        layout = self._current
        if layout is None or not layout.buckets:
            return
        if self.scale_with_lr:
            self._raise_peaks()
        # A fused optimizer under torch's GradScaler is called even for a
        # step with inf/NaN gradients: it gets ``found_inf`` (an attribute
        # the scaler sets for the call) and updates nothing, so the rollback
        # must not happen either.
        found_inf = getattr(optimizer, 'found_inf', kwargs.get('found_inf'))
        if found_inf is not None and bool(found_inf):
            return
        self.rollback()

    # ----------------------------------------------------------- state
    def state_entry(self) -> dict:
        """The set-up's config, the run id and ``scale_with_lr``."""
        entry = super().state_entry()
        entry['scale_with_lr'] = self.scale_with_lr
        return entry

    def check_entry(self, entry: dict, per_param) -> None:
        """Refuse the state of an importance-weighted rollback: its
        ``w`` would be dropped and the run go on as another method."""
        if any('importance' in v for v in per_param.values()):
            raise ValueError(
                f'{self.owner}: the optimizer state to load was written by '
                "the importance-weighted rollback (it holds 'importance' "
                'weights): resume it with paramwise_cfg.importance=\'fisher\' '
                '(and its importance_norm), or start a new fine-tune with '
                'load_from=<ckpt> and resume=False.')

    def saved_with_theta0(self):
        """The rounding carried for low-precision weights (``residual``),
        so that a resume continues bit for bit."""
        live = {
            pid: r
            for pid, r in self._residual.items() if pid in self._entries
        }
        return dict(residual=live) if live else {}

    def _restore_extras(self, loaded) -> None:
        self._residual = {
            id(p): extra['residual'].to(device=p.device, dtype=torch.float32)
            for p, extra in loaded if 'residual' in extra
        }

    def _load_post_hook(self, optimizer) -> None:
        """Commit theta0; the checkpoint's hyper-parameters win.

        torch restores every group's ``rollback`` (lam_i), ``lr`` and
        ``initial_lr`` from the checkpoint; ``scale_with_lr`` follows the
        same rule. A set-up edited since (another ``rollback_max``, another
        ``scale_with_lr`` given to :func:`attach_rollback`, ...) is not
        applied, and one warning line says so.
        """
        super()._load_post_hook(optimizer)
        entry, self._loaded_entry = self._loaded_entry, None
        if not entry:
            return
        saved, mine = dict(entry.get('config') or {}), dict(self.config or {})
        if 'scale_with_lr' in entry:
            saved['scale_with_lr'] = bool(entry['scale_with_lr'])
            mine['scale_with_lr'] = self.scale_with_lr
            self.scale_with_lr = saved['scale_with_lr']
        changed = edited_keys(saved, mine)
        if changed:
            logger.warning(
                'resume: the checkpoint\'s OLOR hyper-parameters apply (%s), '
                'not the ones set now (%s), as torch restores every param '
                "group's values; to change them, start a new fine-tune from "
                'the checkpoint with load_from=<ckpt> and resume=False.',
                ', '.join(f'{k}={saved[k]}' for k in changed),
                ', '.join(f'{k}={mine[k]}' for k in changed))
        if self.config is not None:
            self.config = dict(
                self.config,
                **{k: saved[k]
                   for k in TUNABLE_KEYS if k in saved})

    # ------------------------------------------------------------ maths
    def _raise_peaks(self) -> None:
        """Remember an lr above every earlier one of a rolled-back group."""
        for gi, g in enumerate(self.optimizer.param_groups):
            if _rolls_back(g) and g['lr'] > lr_0(g, current=False):
                if g.get('initial_lr', g['lr']) == 0 and PEAK_KEY not in g:
                    self._warn_lifted(gi, g['lr'])
                g[PEAK_KEY] = g['lr']

    def _warn_lifted(self, gi: int, lr: float) -> None:
        """A group built with lr 0 (``lr_mult=0``: listed frozen) that a
        schedule (or the user) lifted above 0: it trains after all."""
        if self.built_by is None:  # plain PyTorch: no config keys apply
            logger.warning(
                'param group %d had lr 0 when theta0 was taken and has lr '
                '%.3g now: its weights train from this step and roll back '
                'toward theta0 with lr_0 = %.3g (lam_eff = lam_i at this '
                'lr). If lr 0 was meant to keep them still, keep it at 0 or '
                'freeze them with requires_grad_(False).', gi, lr, lr)
            return
        logger.warning(
            'param group %d was built with lr 0 (custom_keys lr_mult=0: '
            'listed frozen) but its lr is %.3g now: a schedule that anneals '
            'toward eta_min > 0 (CosineAnnealingLR eta_min / eta_min_ratio) '
            'lifts it, so these weights train. Set eta_min=0, or freeze '
            'them with requires_grad=False (e.g. the backbone\'s '
            'frozen_stages).', gi, lr)

    def lr_ratios(self) -> List[float]:
        """``lr_t / lr_0`` per rolled-back group of the optimizer's groups
        now (``lr_0``: the largest lr it has had, see :func:`lr_0`), in
        [0, 1]; 1.0 elsewhere.

        All 1.0 with ``scale_with_lr=False``.
        """
        out = []
        for g in self.optimizer.param_groups:
            if not self.scale_with_lr or not _rolls_back(g):
                out.append(1.0)
                continue
            peak = lr_0(g)
            out.append(g['lr'] / peak if peak else 0.0)
        return out

    def lam_effs(self) -> List[float]:
        """``lam_eff = lam_i * lr_t / lr_0`` per param group (0 if none)."""
        return [
            g.get('rollback', 0.0) * r
            for g, r in zip(self.optimizer.param_groups, self.lr_ratios())
        ]

    @torch.no_grad()
    def rollback(self) -> None:
        """``p <- p + lam_eff * (theta0 - p)`` on what the step updated.

        One multi-tensor pass per (device, dtype) bucket of the groups
        being stepped (see :func:`olor_mm.core.rollback.rollback_`). A
        tensor without a gradient is skipped: zeroing with
        ``set_to_none=True`` (torch's and MMEngine's default) leaves a
        tensor outside this step's graph without one, and torch's
        optimizers skip it too. A tensor the step may have left unchanged
        (kept by the pre-hook) rolls back only in the elements the step
        changed, as torch's optimizers leave the others.
        """
        if self._current is None:
            self._current = self._layout()
        unsure, self._unsure = self._unsure, None
        lam = self.lam_effs()
        for bi, b in enumerate(self._current.buckets):
            kept = unsure[bi] if unsure and bi < len(unsure) else {}
            low = is_low_precision(b.params[0].dtype)
            sel = [
                k for k, p in enumerate(b.params)
                if p.grad is not None and k not in kept
            ]
            if sel:
                whole = len(sel) == len(b.params)
                rollback_(b.params if whole else [b.params[k] for k in sel],
                          b.anchors if whole else [b.anchors[k] for k in sel],
                          [lam[b.groups[k]] for k in sel],
                          [self._residual_of(b.params[k])
                           for k in sel] if low else None,
                          self._importance(bi, sel))
            for k, before in kept.items():
                self._rollback_changed(b.params[k], before, b.anchors[k],
                                       lam[b.groups[k]], low,
                                       self._importance(bi, [k]))

    def _importance(self, bucket: int,
                    sel: List[int]) -> Optional[List[torch.Tensor]]:
        """Per-element weights of the pull of bucket ``bucket``'s tensors
        ``sel`` (None: every element alike, OLOR's rollback; the
        importance-weighted rollback gives its ``w``)."""
        return None

    def snapshot(self) -> None:
        self._residual = {}
        super().snapshot()

    def _residual_of(self, p: torch.Tensor) -> torch.Tensor:
        """The float32 rounding carried for low-precision ``p``."""
        r = self._residual.get(id(p))
        if r is None or r.shape != p.shape or r.device != p.device:
            r = self._residual[id(p)] = torch.zeros_like(
                p, dtype=torch.float32)
        return r

    def _rollback_changed(self,
                          p,
                          before,
                          anchor,
                          lam,
                          low,
                          importance=None) -> None:
        """The rollback of ``p`` where the step changed it (``before``: its
        value before the step), nowhere else."""
        changed = p != before
        if not bool(changed.any()):
            return
        target = p.detach().clone()
        residual = self._residual_of(p).clone() if low else None
        rollback_([target], [anchor], [lam],
                  None if residual is None else [residual], importance)
        p.copy_(torch.where(changed, target, p))
        if low:
            r = self._residual_of(p)
            r.copy_(torch.where(changed, residual, r))


def lr_0(group: dict, current: bool = True) -> float:
    """``lr_0`` of ``scale_with_lr``: the largest lr the group has had.

    ``max(initial_lr, rollback_lr_peak, lr_t)``: the scheduler's base lr
    (or the lr when theta0 was taken), any higher lr a step has seen since,
    and (with ``current``) the lr now. A group whose lr is 0 from the start
    gets ``lr_0 = 0`` and no rollback (its weights never move).
    """
    lr = group['lr']
    peak = max(group.get('initial_lr', lr), group.get(PEAK_KEY, 0.0))
    return max(peak, lr) if current else peak


def check_groups(groups: List[dict]) -> None:
    """Validate the ``rollback`` key of every group.

    Raises:
        ValueError: for a ``rollback`` outside [0, 1] or not a number.
    """
    for gi, g in enumerate(groups):
        lam = as_real(g.get('rollback', 0.0))
        if 'rollback' in g:
            g['rollback'] = lam  # a numpy scalar or 0-d tensor: a float
        if (isinstance(lam, bool) or not isinstance(lam, (int, float))
                or not 0.0 <= lam <= 1.0):
            raise ValueError(
                f'param group {gi} has rollback={lam!r}, not a number in '
                '[0, 1]; set rollback_max / rollback_min in [0, 1] '
                '(paramwise_cfg in a config).')


def attach_rollback(optimizer: torch.optim.Optimizer,
                    scale_with_lr: bool = True,
                    anchor_dtype: Union[str, torch.dtype, None] = None,
                    from_current_weights: bool = False,
                    setup: Optional[dict] = None) -> RollbackHandle:
    """Attach OLOR's rollback to ``optimizer``; returns its handle.

    Args:
        optimizer (torch.optim.Optimizer): Any torch optimizer whose param
            groups carry ``rollback`` (``lam_i`` in [0, 1]); groups without
            it do not roll back.
        scale_with_lr (bool): ``lam_eff = lam_i * lr_t / lr_0`` per group,
            so warm-up and decay apply to the rollback too. Defaults to
            True (the reference code).
        anchor_dtype (str | torch.dtype, optional): Keep ``theta0`` in this
            dtype (``'bfloat16'`` halves its memory next to float32
            weights). Defaults to None, the parameters' dtype.
        from_current_weights (bool): Anchor theta0 to the weights at the
            next step although the optimizer has stepped, was anchored
            before (a removed rollback, a copy) or loaded a state dict
            without theta0. Otherwise such an optimizer must get theta0
            from ``load_state_dict()`` (a state dict written with the
            rollback) before it steps.
        setup (dict, optional): How the groups were made: ``groups.setup``
            of :func:`~olor_mm.core.param_groups.layerwise_rollback_groups`.
            Saved with theta0; a resume whose groups were made with other
            ``pretrained_prefixes`` / ``exclude_prefixes`` / ``layer_unit``
            / ``layer_patterns`` is refused, one with another
            ``rollback_*`` applies the checkpoint's (with a warning), as
            under MMEngine.

    Returns:
        RollbackHandle: ``theta0``, ``anchored_params``, ``lam_effs()``,
        ``snapshot()`` (take theta0 now), ``remove()`` (detach).

    Raises:
        RuntimeError: if the optimizer already carries a rollback (or
            another anchored method); at its first step, if it has stepped
            or was anchored before and no theta0 was loaded (see
            ``from_current_weights``).
        TypeError: for anything but a ``torch.optim.Optimizer``.
        ValueError: for a ``rollback`` outside [0, 1] or a bad
            ``anchor_dtype``. (A group with lr 0 is accepted: it does not
            roll back while its lr is 0, and a warning says so if its lr
            rises later.)
    """
    return RollbackHandle(
        optimizer,
        scale_with_lr,
        anchor_dtype,
        from_current_weights=from_current_weights,
        setup=setup)


def find_rollback(optimizer) -> 'RollbackHandle | None':
    """The rollback attached to ``optimizer``, or None."""
    return find_anchor(optimizer, STATE_KEY)
