"""theta0: the pretrained weights a fine-tuning is anchored to (plain torch).

Shared by every anchored method of olor-mm (OLOR's rollback, L2-SP's
penalty). An :class:`Anchor` lives on a ``torch.optim.Optimizer`` and uses
only the optimizer's own extension points, so it works under any MMEngine
wrapper, any tool that drives the optimizer, and in a plain PyTorch loop:

- which tensors are anchored: every parameter of the groups the anchor
  selects, frozen ones too (a layer unfrozen later rolls back toward its
  pretrained value), decided when ``theta0`` is taken or restored and
  extended when ``add_param_group`` adds a selected group;
- ``theta0`` is taken by :meth:`Anchor.snapshot` (training start) or at the
  first optimizer step, never at build time (weights are loaded later);
- ``optimizer.state_dict()`` carries it under the anchor's key (a state-dict
  post-hook), ``optimizer.load_state_dict()`` restores and checks it (a
  load pre-hook validates before torch touches anything, a post-hook
  commits), so checkpoints written by any wrapper resume;
- (device, dtype) buckets for the ``torch._foreach_*`` kernels.

With nothing anchored an anchor is inert: the optimizer's state dict is
exactly torch's, and any state dict torch loads still loads.

This module imports nothing of MMEngine.
"""
import logging
import weakref
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from .param_groups import hashable_option
from .rollback import group_by_device_and_dtype

logger = logging.getLogger(__name__)

#: key of the entry the pre-0.2 wrappers wrote for OLOR and L2-SP alike;
#: still read on load so their checkpoints resume.
LEGACY_STATE_KEY = 'olor'

#: optimizer -> {state key: anchor} of every anchor attached to it
_ATTACHED: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()

#: param-group key naming the anchor that holds the group's theta0 (its
#: state key; :data:`DETACHED` after ``remove()``). torch keeps it with the
#: group in ``state_dict()``, ``deepcopy`` and pickling, which all drop the
#: optimizer's hooks: a copy that lost its anchor is seen at its first step.
MARK_KEY = 'olor_anchor'
DETACHED = 'detached'

#: keys of the structural set-up (which tensors are anchored, how they are
#: numbered): a checkpoint written with other values is refused on load
STRUCTURAL_KEYS = ('pretrained_prefixes', 'exclude_prefixes', 'layer_unit',
                   'layer_patterns')

#: optimizers that have stepped in this process (see :func:`_guard_step`)
_STEPPED: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()

#: the checkpoint file loaded last (set by olor-mm's MMEngine loader while
#: a Runner loads or resumes), so that an error about the optimizer state
#: it held can name it
_LAST_CHECKPOINT = {'path': None}

#: optimizer -> the last checkpoint written complete with its state (set by
#: olor-mm's safe checkpoint save), per optimizer: runs of a sweep in one
#: process never name each other's files
_SAVED: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()


def note_checkpoint(path: Optional[str]) -> None:
    """Remember the checkpoint file being loaded, for error messages."""
    _LAST_CHECKPOINT['path'] = path


def checkpoint_note() -> str:
    """`` (checkpoint PATH)`` naming the file being loaded, or ''."""
    path = _LAST_CHECKPOINT['path']
    return f' (checkpoint {path})' if path else ''


def note_saved_checkpoint(path: str, optimizers) -> None:
    """Remember the last checkpoint written complete with ``optimizers``'
    state, for error messages."""
    for optimizer in optimizers:
        _SAVED[optimizer] = path


def last_saved_note(optimizer) -> str:
    """A sentence naming the last complete checkpoint written with
    ``optimizer``'s state, or ''."""
    path = _SAVED.get(optimizer)
    return (f' The last checkpoint written before is {path}: resume from '
            'it.' if path else '')


def _history(optimizer) -> Optional[str]:
    """Why the optimizer's weights may no longer be the pretrained ones
    (None for a fresh optimizer)."""
    marked = [
        gi for gi, g in enumerate(optimizer.param_groups)
        if g.get(MARK_KEY) is not None
    ]
    if marked:
        return (f'has param groups anchored before ({MARK_KEY!r} in group '
                f'{marked[0]}: an anchor removed, a copied optimizer, or a '
                'state dict loaded that was written with one)')
    if _STEPPED.get(optimizer):
        return 'has stepped'
    stepped = [
        s for s in getattr(optimizer, 'state', {}).values()
        if isinstance(s, dict) and float(s.get('step', 0) or 0) > 0
    ]
    if stepped:
        return (f'holds the state of past steps for {len(stepped)} '
                'parameters (a loaded state dict)')
    return None


def _guard_step(optimizer, args, kwargs) -> None:
    """Global step pre-hook: an optimizer whose groups an anchor marked
    must carry it; ``copy.deepcopy``, pickling and ``load_state_dict`` into
    a bare optimizer keep the groups but drop the hooks, and would train
    without the rollback."""
    _STEPPED[optimizer] = True
    if _ATTACHED.get(optimizer):
        return
    for gi, g in enumerate(optimizer.param_groups):
        owner = g.get(MARK_KEY)
        if owner is not None and owner != DETACHED:
            raise RuntimeError(
                f'param group {gi} of this {type(optimizer).__name__} was '
                f"anchored ({MARK_KEY}={owner!r}) but no anchor is attached "
                'to the optimizer: copy.deepcopy and pickling drop '
                'optimizer hooks, and load_state_dict() into a bare '
                'optimizer drops theta0, so it would train without the '
                'rollback. Attach first (handle = attach_rollback(opt), '
                'or build it with the same optim_wrapper), then '
                'opt.load_state_dict(<a state dict written with it>); to '
                "train on without it on purpose, drop the key: for g in "
                f"opt.param_groups: g.pop({MARK_KEY!r}, None).")


_GUARD = register_optimizer_step_pre_hook(_guard_step)


class Bucket:
    """Anchored tensors of one (device, dtype), ready for _foreach ops."""

    __slots__ = ('params', 'anchors', 'groups')

    def __init__(self, params, anchors, groups):
        self.params: List[torch.Tensor] = params
        self.anchors: List[torch.Tensor] = anchors
        self.groups: List[int] = groups  # index of each tensor's group


def parse_anchor_dtype(
        anchor_dtype: Union[str, torch.dtype, None]) -> Optional[torch.dtype]:
    """``'bfloat16'`` -> ``torch.bfloat16``; None stays None.

    Raises:
        ValueError: for anything but None or a floating dtype (or its name).
    """
    parsed = anchor_dtype
    if isinstance(parsed, str):  # 'bfloat16' or 'torch.bfloat16'
        name = parsed[len('torch.'):] if parsed.startswith('torch.') \
            else parsed
        parsed = getattr(torch, name, parsed)
    if parsed is not None and not (isinstance(parsed, torch.dtype)
                                   and parsed.is_floating_point):
        raise ValueError(
            f'anchor_dtype={anchor_dtype!r} is not a floating dtype; use '
            "None (the parameters' dtype) or e.g. 'bfloat16' to halve "
            "theta0's memory.")
    return parsed


def check_values(owner: str, anchored) -> None:
    """Refuse to anchor tensors that hold no values (the meta device).

    Raises:
        ValueError: naming how many and what to do.
    """
    meta = [p for _, p in anchored if p.is_meta]
    if meta:
        raise ValueError(
            f'{owner}: {len(meta)} anchored weights are on the meta device '
            '(a model built without memory) and hold no values to take '
            'theta0 from: materialise the model (to_empty(device=...) and '
            'load its pretrained weights) before training starts.')


class AnchorViewsMixin:
    """Read-only views of a wrapper's :attr:`anchor` (an :class:`Anchor`),
    for tools, hooks and tests: the same names under OLOR and L2-SP."""

    @property
    def theta0(self) -> Optional[List[torch.Tensor]]:
        """``theta0`` (the paper's; ``w0_S`` in L2-SP): the pretrained values
        of the anchored tensors, or None until taken."""
        return self.anchor.theta0

    @property
    def anchored_params(self) -> List[torch.Tensor]:
        """The anchored (pretrained, trainable) parameters, in the order of
        :attr:`theta0`."""
        return self.anchor.anchored_params


def find_anchor(optimizer, state_key: Optional[str] = None):
    """The anchor attached to ``optimizer`` (under ``state_key``), or None.

    Without ``state_key`` any anchor: an optimizer carries at most one
    anchored method (OLOR's rollback or L2-SP).
    """
    attached = _ATTACHED.get(optimizer, {})
    if state_key is not None:
        return attached.get(state_key)
    return next(iter(attached.values()), None)


class Anchor:
    """``theta0`` of the anchored tensors of one torch optimizer.

    Args:
        optimizer (torch.optim.Optimizer): The optimizer to attach to.
        select (callable): ``select(group) -> bool``, True for the param
            groups whose trainable parameters are anchored.
        state_key (str): Key of the anchor's entry in the optimizer's
            state dict, naming what it is (``'olor_rollback'``, ...).
        anchor_dtype (str | torch.dtype, optional): Keep ``theta0`` in this
            dtype; None keeps each parameter's dtype.
        owner (str): Name used in messages (e.g. ``'OLOR rollback'``).
        from_current_weights (bool): Accept an optimizer that has stepped
            or was anchored before, and take theta0 from its weights then.
            Otherwise theta0 must come from ``load_state_dict()`` first.
        setup (dict, optional): The set-up that chose and numbered the
            anchored tensors (``pretrained_prefixes``, ``layer_unit``, ...:
            ``groups.setup`` of
            :func:`~olor_mm.core.param_groups.layerwise_rollback_groups`,
            or what ``LayerwiseRollbackConstructor`` passes, with its
            ``merge_groups``). Saved with theta0; on load, a state dict
            written with other :data:`STRUCTURAL_KEYS` or another
            param-group layout is refused with the key to set.
    """

    def __init__(self,
                 optimizer,
                 select: Callable[[dict], bool],
                 state_key: str,
                 anchor_dtype: Union[str, torch.dtype, None] = None,
                 owner: str = 'anchor',
                 from_current_weights: bool = False,
                 setup: Optional[dict] = None):
        attached = _ATTACHED.setdefault(optimizer, {})
        if attached:
            (other, ) = attached.values()
            raise RuntimeError(
                f'{owner}: the optimizer already carries {other.owner} '
                f"(state key '{other.state_key}'); one anchored method per "
                'optimizer: call .remove() on the attached one first.')
        self.optimizer = optimizer
        self.owner = owner
        self.state_key = state_key
        self.anchor_dtype = parse_anchor_dtype(anchor_dtype)
        self._select = select
        self._anchored: Optional[List[Tuple[int, torch.Tensor]]] = None
        self._theta0: Optional[List[torch.Tensor]] = None
        self._groups_seen = 0  # param groups when theta0 was taken
        self._pending = None  # checked by the load pre-hook
        #: the entry the last load restored (checked), for subclasses'
        #: post-hooks
        self._loaded_entry: Optional[dict] = None
        #: why theta0 cannot be taken from the current weights (the
        #: optimizer stepped or was anchored before); cleared by a load
        #: that restores theta0
        self._not_pretrained = None if from_current_weights else _history(
            optimizer)
        #: the set-up that numbered the anchored tensors (``setup``), saved
        #: with theta0 and compared on load
        self.config: Optional[dict] = dict(setup) if setup else None
        self.buckets: List[Bucket] = []
        self._handles = [
            optimizer.register_state_dict_post_hook(self._save_hook),
            optimizer.register_load_state_dict_pre_hook(self._load_pre_hook),
            optimizer.register_load_state_dict_post_hook(self._load_post_hook),
        ]
        attached[state_key] = self

    # ------------------------------------------------------------ what
    def _current_anchored(self,
                          start: int = 0) -> List[Tuple[int, torch.Tensor]]:
        """(group index, parameter) of every parameter of the selected
        groups from group ``start`` on, frozen ones included."""
        groups = self.optimizer.param_groups
        return [(gi, p) for gi in range(start, len(groups))
                if self._select(groups[gi]) for p in groups[gi]['params']]

    @property
    def anchored(self) -> List[Tuple[int, torch.Tensor]]:
        """(group index, parameter) of every anchored tensor.

        Follows the optimizer's groups until ``theta0`` is taken or
        restored, fixed from then on.
        """
        if self._anchored is not None:
            return self._anchored
        return self._current_anchored()

    @property
    def anchored_params(self) -> List[torch.Tensor]:
        """The anchored parameters, in the order of :attr:`theta0`."""
        return [p for _, p in self.anchored]

    @property
    def theta0(self) -> Optional[List[torch.Tensor]]:
        """Pretrained values of the anchored tensors, or None if untaken."""
        return self._theta0

    @property
    def active(self) -> bool:
        """Whether anything is anchored (an inert anchor changes nothing)."""
        return bool(self.anchored)

    @property
    def trainable(self) -> bool:
        """Whether an anchored tensor is trainable now."""
        return any(p.requires_grad for _, p in self.anchored)

    # ------------------------------------------------------------ take
    @torch.no_grad()
    def snapshot(self) -> None:
        """Take ``theta0`` from the parameters' current values.

        Raises:
            ValueError: if an anchored weight holds NaN or inf: theta0 is
                what every later step is pulled toward, it must be finite.
        """
        anchored = self._current_anchored()
        if anchored and self._not_pretrained:
            raise RuntimeError(
                f'{self.owner}: theta0 would be taken from the current '
                f'weights, but the {type(self.optimizer).__name__} '
                f'{self._not_pretrained}: they are fine-tuned, not '
                'pretrained. Attach right after building the optimizer, '
                'then load_state_dict(<a state dict written with the '
                f'{self.owner}>) to restore theta0; to anchor to the current '
                'weights on purpose, pass from_current_weights=True.')
        check_values(self.owner, anchored)
        bad = [
            k for k, (_, p) in enumerate(anchored)
            if not bool(torch.isfinite(p).all())
        ]
        if bad:
            shapes = [tuple(anchored[k][1].shape) for k in bad[:3]]
            raise ValueError(
                f'{self.owner}: {len(bad)} of the {len(anchored)} anchored '
                f'weights hold NaN or inf at training start (shapes '
                f'{shapes}...), so theta0 cannot be taken from them: check '
                'the pretrained checkpoint (init_cfg / load_from).')
        self._anchored = anchored
        self._groups_seen = len(self.optimizer.param_groups)
        self._set_theta0([
            p.detach().to(self.anchor_dtype or p.dtype, copy=True)
            for _, p in self._anchored
        ])

    @torch.no_grad()
    def take_new_groups(self) -> None:
        """Anchor the selected groups ``add_param_group`` added since theta0
        was taken: their theta0 is their weights now, before they update
        (cheap when none was added: one length check)."""
        groups = self.optimizer.param_groups
        if self._theta0 is None or len(groups) == self._groups_seen:
            return
        new = self._current_anchored(start=self._groups_seen)
        self._groups_seen = len(groups)
        if not new:
            return
        check_values(self.owner, new)
        self._anchored = self._anchored + new
        self._set_theta0(self._theta0 + [
            p.detach().to(self.anchor_dtype or p.dtype, copy=True)
            for _, p in new
        ])
        logger.info(
            '%s: %d tensors of a param group added after theta0 was taken '
            'are anchored to their values now.', self.owner, len(new))

    def ensure_theta0(self) -> None:
        """Take ``theta0`` now if nothing took or restored it yet."""
        if self._theta0 is None:
            self.snapshot()

    def start_training(self, iteration: int, where: str = '') -> None:
        """Take ``theta0`` at the start of training (after weights load).

        Raises:
            RuntimeError: when training resumes (``iteration > 0``) with
                something anchored and no ``theta0`` restored: taking it now
                would anchor to the fine-tuned weights.
        """
        if self._theta0 is not None:
            return
        if iteration > 0 and self.active:
            raise RuntimeError(
                f'Training resumes at iteration {iteration} but no theta0 '
                f'was restored{where}: the checkpoint lacks the optimizer '
                f"state or its '{self.state_key}' entry "
                '(resume_optimizer=False, or a checkpoint written without '
                f'the {self.owner}). Resume from a checkpoint saved with it, '
                'or start a new fine-tune with load_from=<ckpt> and '
                'resume=False.')
        self.snapshot()

    def _set_theta0(self, theta0: List[torch.Tensor]) -> None:
        self._theta0 = theta0
        self._not_pretrained = None
        for g in self.optimizer.param_groups:
            if self._select(g):
                g[MARK_KEY] = self.state_key
            elif g.get(MARK_KEY) == self.state_key:
                del g[MARK_KEY]
        self.buckets = []
        params = self.anchored_params
        for idx in group_by_device_and_dtype(params).values():
            self.buckets.append(
                Bucket([params[k] for k in idx], [theta0[k] for k in idx],
                       [self._anchored[k][0] for k in idx]))

    # ----------------------------------------------------------- state
    def _param_index(self) -> Dict[int, int]:
        """id(param) -> index in torch's optimizer state_dict numbering."""
        index: Dict[int, int] = {}
        for g in self.optimizer.param_groups:
            for p in g['params']:
                index.setdefault(id(p), len(index))
        return index

    def state_entry(self) -> dict:
        """``{'theta0': {index: tensor}, 'config': ...}`` (theta0 None
        before it is taken)."""
        theta0 = None
        if self._theta0 is not None:
            index = self._param_index()
            theta0 = {
                index[id(p)]: t
                for (_, p), t in zip(self._anchored, self._theta0)
            }
        return dict(
            theta0=theta0,
            config=self.config,
            optimizer=type(self.optimizer).__name__)

    def check_entry(self, entry: dict) -> None:
        """Subclasses check what else the entry saved (on load, after the
        set-up and before the layout); only checks (a post-hook reads the
        entry from ``_loaded_entry``)."""

    def _check_setup(self, entry: dict) -> None:
        """Refuse a state dict whose anchored tensors were chosen or
        numbered with another set-up (:data:`STRUCTURAL_KEYS`): its theta0
        and layers are not this model's."""
        saved, mine = entry.get('config') or {}, self.config or {}
        diff = [
            k for k in STRUCTURAL_KEYS if k in saved and k in mine
            and hashable_option(saved[k]) != hashable_option(mine[k])
        ]
        if diff:
            raise ValueError(
                f'{self.owner}: the optimizer state{checkpoint_note()} was '
                'written with ' + ', '.join(f'{k}={saved[k]!r}'
                                            for k in diff) +
                ', this set-up has ' +
                ', '.join(f'{k}={mine[k]!r}' for k in diff) + ': its layers '
                'and theta0 are numbered differently. Resume with the '
                "checkpoint's values, or start a new fine-tune from its "
                'weights with load_from=<ckpt> and resume=False.')

    def _check_layout(self, state_dict: dict) -> None:
        """Name the cause when the param groups to load differ from this
        optimizer's (torch's own message, "a different number of parameter
        groups", says none): a checkpoint of the other ``merge_groups``
        layout is the usual one."""
        saved = state_dict.get('param_groups', [])
        here = self.optimizer.param_groups
        if [len(g['params'])
                for g in saved] == [len(g['params']) for g in here]:
            return
        merged = (self.config or {}).get('merge_groups')
        key = 'paramwise_cfg.merge_groups'
        per_param = bool(saved) and all(len(g['params']) == 1 for g in saved)
        raise ValueError(
            f'the optimizer state to load{checkpoint_note()} has '
            f'{len(saved)} param groups, this optimizer {len(here)}: ' +
            (f'the checkpoint was written with one group per parameter; '
             f'set {key}=False to resume it.' if merged and per_param else
             f'the checkpoint was written with merged groups; set '
             f'{key}=True to resume it.' if merged is False else
             'the model, the pretrained prefixes or the param-group options '
             'changed since the checkpoint was written.'))

    def _save_hook(self, optimizer, state_dict: dict) -> dict:
        if self.active:
            self._check_finite()
            state_dict[self.state_key] = self.state_entry()
        return state_dict

    @torch.no_grad()
    def _check_finite(self) -> None:
        """Refuse to save weights that hold NaN / inf: every parameter of
        the optimizer, anchored or not (one multi-tensor norm per device
        and dtype); a checkpoint must never keep them silently."""
        if self._theta0 is None:
            return
        params = list({
            id(p): p
            for g in self.optimizer.param_groups for p in g['params']
        }.values())
        bad = []
        for idx in group_by_device_and_dtype(params).values():
            norms = torch._foreach_norm([params[k] for k in idx])
            finite = torch.isfinite(torch.stack(norms))
            if not bool(finite.all()):
                bad += [
                    params[idx[k]]
                    for k in (~finite).nonzero().flatten().tolist()
                ]
        if bad:
            anchored = {id(p) for p in self.anchored_params}
            where = ', '.join(
                f'{tuple(p.shape)} '
                f"({'' if id(p) in anchored else 'not '}anchored)"
                for p in bad[:3])
            raise FloatingPointError(
                f'{self.owner}: {len(bad)} weight tensors hold NaN or inf '
                f'({where}...), so this optimizer state is not saved: a '
                'diverged step (a NaN loss, a too high lr) would be kept in '
                'the checkpoint. Lower the lr or clip the gradients '
                '(clip_grad=dict(max_norm=..., error_if_nonfinite=True) '
                'stops at the bad step).' + last_saved_note(self.optimizer))

    def _load_pre_hook(self, optimizer, state_dict: dict) -> dict:
        """Pop and check the entry before torch loads the rest: the entry is
        there, of this optimizer type, of this set-up (and what
        :meth:`check_entry` adds), the param-group layout matches, theta0
        covers the anchored tensors with their shapes and finite values."""
        self._pending = self._loaded_entry = None
        key = self.state_key if self.state_key in state_dict else (
            LEGACY_STATE_KEY if LEGACY_STATE_KEY in state_dict else None)
        entry = state_dict.pop(key) if key else None
        state_dict.pop(LEGACY_STATE_KEY, None)
        if not self.active:
            if entry is not None and entry.get('theta0') is not None:
                logger.warning(
                    '%s: the loaded optimizer state holds theta0 but nothing '
                    'is anchored now, so it is ignored.', self.owner)
            self._check_layout(state_dict)
            return state_dict
        where = checkpoint_note()
        if entry is None:
            raise KeyError(
                f'{self.owner}: the optimizer state to load{where} has no '
                f"'{self.state_key}' entry, so theta0 (the pretrained "
                'weights the fine-tuning is anchored to) cannot be restored. '
                f'Resume from a checkpoint written with the {self.owner}, or '
                'start a new fine-tune from these weights with '
                'load_from=<ckpt> and resume=False.')
        saved_optimizer = entry.get('optimizer')
        kind = type(self.optimizer).__name__
        if saved_optimizer and saved_optimizer != kind:
            raise ValueError(
                f'{self.owner}: the optimizer state to load{where} is of '
                f'{saved_optimizer}, this optimizer is '
                f'{kind}: its state (moments, '
                'buffers) cannot continue another optimizer. Resume with '
                f'optimizer.type={saved_optimizer!r}, or start a new '
                'fine-tune from its weights with load_from=<ckpt> and '
                'resume=False.')
        self._check_setup(entry)
        self.check_entry(entry)
        self._check_layout(state_dict)
        self._loaded_entry = entry
        saved = entry['theta0']
        if saved is None:
            return state_dict
        anchored = self._current_anchored()
        index = self._param_index()
        want = {index[id(p)]: p for _, p in anchored}
        # theta0 of a frozen tensor is its value: checkpoints written before
        # frozen tensors were anchored (olor-mm < 0.3) lack them
        saved = dict(saved)
        for k, p in want.items():
            if k not in saved and not p.requires_grad:
                saved[k] = p.detach()
        if set(saved) != set(want):
            raise ValueError(
                f'{self.owner}: the saved theta0{where} covers {len(saved)} '
                f'tensors, this model anchors {len(want)} (indices differ: '
                f'e.g. {sorted(set(saved) ^ set(want))[:5]}); the model, the '
                'pretrained prefixes or the optimizer set-up changed since '
                'the checkpoint was written.')
        for k, p in want.items():
            if saved[k].shape != p.shape:
                raise ValueError(
                    f'{self.owner}: the saved theta0{where} of parameter #{k} '
                    f'has shape {tuple(saved[k].shape)}, the model\'s has '
                    f'{tuple(p.shape)}; the checkpoint is of another model.')
            if not bool(torch.isfinite(saved[k]).all()):
                raise ValueError(
                    f'{self.owner}: the saved theta0{where} of parameter #{k} '
                    'holds NaN or inf; the checkpoint is damaged.')
        self._pending = (anchored, [saved[k] for k in want])
        return state_dict

    def _load_post_hook(self, optimizer) -> None:
        """Commit the theta0 checked by the pre-hook."""
        if self._pending is None:
            return
        (self._anchored, saved), self._pending = self._pending, None
        self._groups_seen = len(self.optimizer.param_groups)
        kept = {(t.dtype, self.anchor_dtype or p.dtype)
                for t, (_, p) in zip(saved, self._anchored)}
        lossy = [(a, b) for a, b in kept
                 if a != b and torch.finfo(b).bits < torch.finfo(a).bits]
        if lossy:
            logger.warning(
                '%s: theta0 was saved in %s and is kept in %s now '
                '(anchor_dtype of the config): rounded on resume. Resume '
                'with the anchor_dtype it was written with to keep it '
                'exact.', self.owner, lossy[0][0], lossy[0][1])
        self._set_theta0([
            t.to(
                device=p.device, dtype=self.anchor_dtype or p.dtype, copy=True)
            for t, (_, p) in zip(saved, self._anchored)
        ])

    def remove(self) -> None:
        """Detach from the optimizer: no more hooks, no state entry."""
        for h in self._handles:
            h.remove()
        self._handles = []
        for g in self.optimizer.param_groups:
            if g.get(MARK_KEY) == self.state_key:
                g[MARK_KEY] = DETACHED
        attached = _ATTACHED.get(self.optimizer, {})
        if attached.get(self.state_key) is self:
            del attached[self.state_key]
