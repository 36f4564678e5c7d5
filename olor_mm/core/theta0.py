"""theta0: the pretrained weights a fine-tuning is anchored to (plain torch).

Shared by every anchored method of olor-mm (OLOR's rollback, L2-SP's and
EWC's penalties). An :class:`Anchor` lives on a ``torch.optim.Optimizer``
and uses only the optimizer's own hooks, so it behaves the same under any
MMEngine wrapper, runner or engine, any tool that drives the optimizer,
and a plain PyTorch loop. The one rule:

    theta0 of an anchored tensor is its value just before the optimizer
    first updates it (a step pre-hook), unless ``load_state_dict()``
    restored it first.

Weights loaded at any point before the first step (``load_from``,
``init_cfg``, a resume, in whatever order a runner calls them) are what
theta0 holds. An engine that steps a group at a time or swaps a group's
tensors (DeepSpeed's ZeRO steps each group on its fp32 partition) gets
each tensor's theta0 just before that tensor's first update.

- which tensors are anchored: every tensor of the param groups the anchor
  selects, frozen ones too (a layer unfrozen later rolls back toward its
  pretrained value); groups are followed by identity, so a group added
  later (``add_param_group``) is anchored when it first steps;
- ``optimizer.state_dict()`` carries theta0 in each anchored param group,
  as a list in the order of the group's params (``'<state_key>.theta0'``,
  beside the group's ``lr`` and ``rollback``), so that whatever saves,
  re-keys or shards the optimizer's groups (FSDP's local state dict,
  DeepSpeed's ZeRO) saves and restores theta0 with them; a top-level entry
  under the anchor's key carries the set-up that numbered the tensors;
- ``optimizer.load_state_dict()`` restores and checks theta0 (a load
  pre-hook refuses a state of another set-up before torch touches
  anything, a post-hook commits);
- (device, dtype) buckets for the ``torch._foreach_*`` kernels.

With nothing anchored an anchor is inert: the optimizer's state dict is
exactly torch's, and any state dict torch loads still loads.

This module imports nothing of MMEngine.
"""
import logging
import uuid
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch

from . import copy_guard
from .copy_guard import DETACHED, MARK_KEY
from .resume_checks import (NEW_FINE_TUNE, check_layout, check_optimizer,
                            check_setup, check_state_shapes, check_theta0)
from .rollback import group_by_device_and_dtype

logger = logging.getLogger(__name__)

__all__ = [
    'Anchor', 'Bucket', 'find_anchor', 'saved_theta0', 'saved_per_param',
    'parse_anchor_dtype', 'MARK_KEY'
]

#: key of the entry the pre-0.2 wrappers wrote for OLOR and L2-SP alike;
#: still read on load so their checkpoints resume.
LEGACY_STATE_KEY = 'olor'

#: how many group layouts an anchor keeps its buckets for (DeepSpeed's
#: ZeRO-1/2 steps one group at a time: one layout per group)
_LAYOUTS_KEPT = 64


class Bucket:
    """Anchored tensors of one (device, dtype) in the optimizer's current
    groups, ready for _foreach ops."""

    __slots__ = ('params', 'anchors', 'groups')

    def __init__(self, params, anchors, groups):
        self.params: List[torch.Tensor] = params
        self.anchors: List[torch.Tensor] = anchors
        #: index of each tensor's group in ``optimizer.param_groups`` now
        self.groups: List[int] = groups


class _Layout:
    """The buckets of one arrangement of the optimizer's groups. Keeps the
    groups' ``params`` lists alive, so that their ids, which key it, are
    never reused by other lists while it is kept."""

    __slots__ = ('lists', 'buckets', 'others', 'unanchored')

    def __init__(self, lists, buckets, others, unanchored):
        self.lists = lists
        self.buckets: List[Bucket] = buckets
        #: trainable tensors of the groups not anchored, per (device, dtype)
        self.others: List[List[torch.Tensor]] = others
        #: indices of the groups not anchored
        self.unanchored: List[int] = unanchored


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
    if copy_guard.has_stepped(optimizer):
        return 'has stepped'
    stepped = [
        s for s in getattr(optimizer, 'state', {}).values()
        if isinstance(s, dict) and (float(s.get('step', 0) or 0) > 0
                                    or s.get('momentum_buffer') is not None)
    ]
    if stepped:
        return (f'holds the state of past steps for {len(stepped)} '
                'parameters (a loaded state dict)')
    return None


def saved_per_param(optimizer_state: dict, state_key: str,
                    name: str) -> Dict[int, torch.Tensor]:
    """``name`` (``'theta0'``, ``'fisher'``) of each anchored tensor in a
    saved optimizer state dict, by state index: the list its param group
    carries under ``'<state_key>.<name>'``, or (olor-mm 0.2 and earlier) the
    top-level entry's ``{index: tensor}``; empty when there is none."""
    key = f'{state_key}.{name}'
    found = {
        k: t
        for g in optimizer_state.get('param_groups') or []
        for k, t in zip(g.get('params', []),
                        g.get(key) or []) if t is not None
    }
    entry = optimizer_state.get(state_key) or {}
    return found or dict(entry.get(name) or {})


def saved_theta0(optimizer_state: dict,
                 state_key: str = 'olor_rollback') -> Dict[int, torch.Tensor]:
    """theta0 in a saved optimizer state dict, by state index
    (:func:`saved_per_param`)."""
    return saved_per_param(optimizer_state, state_key, 'theta0')


def find_anchor(optimizer, state_key: Optional[str] = None):
    """The anchor attached to ``optimizer`` (under ``state_key``), or None.

    Without ``state_key`` any anchor: an optimizer carries at most one
    anchored method (OLOR's rollback, L2-SP or EWC). An engine's optimizer
    that wraps the torch one (DeepSpeed's ZeRO optimizers, MMEngine's
    wrappers) is looked through (its ``optimizer``).
    """
    for _ in range(4):
        try:
            attached = copy_guard.ATTACHED.get(optimizer)
        except TypeError:  # not weak-referable or hashable: no optimizer
            attached = None
        if attached or not hasattr(optimizer, 'optimizer'):
            break
        optimizer = optimizer.optimizer
    attached = attached or {}
    if state_key is not None:
        return attached.get(state_key)
    return next(iter(attached.values()), None)


class Anchor:
    """``theta0`` of the anchored tensors of one torch optimizer.

    Args:
        optimizer (torch.optim.Optimizer): The optimizer to attach to.
        select (callable): ``select(group) -> bool``, True for the param
            groups whose tensors are anchored.
        state_key (str): Key of the anchor's entries in the optimizer's
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
            written with other :data:`~.resume_checks.STRUCTURAL_KEYS` or
            another param-group layout is refused with the key to set.

    Attributes:
        position (callable, optional): Set by a training framework:
            ``position() -> int | None``, the iteration training started
            at, asked once, before the first theta0 is taken; a start > 0
            with nothing restored is a resume that would anchor to
            fine-tuned weights, and is refused.
        before_first_take (list[callable]): Called with the anchor just
            before the first theta0 is taken from the weights (a framework
            checks there that pretrained weights were loaded).
    """

    def __init__(self,
                 optimizer,
                 select: Callable[[dict], bool],
                 state_key: str,
                 anchor_dtype: Union[str, torch.dtype, None] = None,
                 owner: str = 'anchor',
                 from_current_weights: bool = False,
                 setup: Optional[dict] = None):
        attached = copy_guard.ATTACHED.get(optimizer, {})
        if attached:
            (other, ) = attached.values()
            raise RuntimeError(
                f'{owner}: the optimizer already carries {other.owner} '
                f"(state key '{other.state_key}'); one anchored method per "
                'optimizer: call .remove() on the attached one first.')
        copy_guard.install()
        self.optimizer = optimizer
        self.owner = owner
        self.state_key = state_key
        self.anchor_dtype = parse_anchor_dtype(anchor_dtype)
        self._select = select
        #: id(param) -> (param, theta0), in the order theta0 was taken
        self._entries: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}
        #: id(group) -> (group, anchored) of every group seen stepping
        self._groups: Dict[int, Tuple[dict, bool]] = {}
        self._layouts: Dict[tuple, _Layout] = {}
        self._current: Optional[_Layout] = None
        self._restored = False  # theta0 came from load_state_dict
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
        #: one id per fine-tune, kept through its resumes (saved with
        #: theta0): two runs writing into one work dir are told apart
        self.run_id: Optional[str] = None
        self.position: Optional[Callable[[], Optional[int]]] = None
        self.before_first_take: List[Callable] = []
        #: ``{id(param): name}`` for messages (set by a framework that knows
        #: the model)
        self.param_names: Optional[Dict[int, str]] = None
        #: what built the groups (a framework's constructor), or None for
        #: the plain PyTorch API; chooses the advice of messages
        self.built_by: Optional[str] = None
        self._handles = [
            optimizer.register_state_dict_post_hook(self._save_hook),
            optimizer.register_load_state_dict_pre_hook(self._load_pre_hook),
            optimizer.register_load_state_dict_post_hook(self._load_post_hook),
            optimizer.register_step_pre_hook(self._pre_step),
        ]
        copy_guard.ATTACHED.setdefault(optimizer, {})[state_key] = self
        copy_guard.protect_copies(optimizer)

    # ------------------------------------------------------------ what
    def selected_params(self) -> List[torch.Tensor]:
        """The tensors of the optimizer's groups the anchor selects now
        (what the next step anchors, frozen ones included)."""
        return [
            p for g in self.optimizer.param_groups if self._select(g)
            for p in g['params']
        ]

    @property
    def anchored_params(self) -> List[torch.Tensor]:
        """The anchored tensors, in the order of :attr:`theta0`; before
        the first step, the tensors it will anchor."""
        if self._entries:
            return [p for p, _ in self._entries.values()]
        return self.selected_params()

    @property
    def theta0(self) -> Optional[List[torch.Tensor]]:
        """Pretrained values of the anchored tensors, or None before any
        is taken or restored."""
        if not self._entries:
            return None
        return [t for _, t in self._entries.values()]

    def theta0_of(self, param: torch.Tensor) -> Optional[torch.Tensor]:
        """theta0 of ``param``, or None (not anchored, or not yet)."""
        entry = self._entries.get(id(param))
        return None if entry is None else entry[1]

    @property
    def active(self) -> bool:
        """Whether anything is (or is about to be) anchored."""
        return bool(self._entries) or bool(self.selected_params())

    @property
    def trainable(self) -> bool:
        """Whether an anchored tensor is trainable now."""
        return any(p.requires_grad for p in self.anchored_params)

    # ------------------------------------------------------------ take
    def _layout(self) -> _Layout:
        """The buckets of the optimizer's groups now; a group or tensor
        not seen before gets its theta0 here (before its first update)."""
        groups = self.optimizer.param_groups
        key = tuple((id(g), id(g['params']), len(g['params'])) for g in groups)
        layout = self._layouts.get(key)
        if layout is not None:
            for gi in layout.unanchored:  # lam raised on a group without one
                if self._select(groups[gi]):
                    self._selected_late(gi, groups[gi])
            return layout
        new, anchored_groups = [], []
        for gi, g in enumerate(groups):
            seen = self._groups.get(id(g))
            if seen is None:
                anchored = self._select(g)
                self._groups[id(g)] = (g, anchored)
            else:  # a group keeps its theta0 when its lam reaches 0
                anchored = seen[1]
                if not anchored and self._select(g):
                    self._selected_late(gi, g)
            if anchored:
                anchored_groups.append(gi)
                # torch lets a tensor into one group only
                new += [p for p in g['params'] if id(p) not in self._entries]
        if new:
            self._take(new, [groups[gi] for gi in anchored_groups])
        for gi in anchored_groups:
            groups[gi][MARK_KEY] = self.state_key
        if len(self._layouts) >= _LAYOUTS_KEPT:
            self._layouts.clear()
        layout = self._layouts[key] = self._build_layout(groups)
        return layout

    def _build_layout(self, groups) -> _Layout:
        params, anchors, where, others = [], [], [], []
        for gi, g in enumerate(groups):
            anchored = self._groups[id(g)][1]
            for p in g['params']:
                entry = self._entries.get(id(p)) if anchored else None
                if entry is not None:
                    params.append(p)
                    anchors.append(entry[1])
                    where.append(gi)
                elif not anchored and p.requires_grad:
                    others.append(p)
        buckets = [
            Bucket([params[k]
                    for k in idx], [anchors[k]
                                    for k in idx], [where[k] for k in idx])
            for idx in group_by_device_and_dtype(params).values()
        ]
        other_buckets = [[others[k] for k in idx]
                         for idx in group_by_device_and_dtype(others).values()]
        unanchored = [
            gi for gi, g in enumerate(groups) if not self._groups[id(g)][1]
        ]
        return _Layout([g['params'] for g in groups], buckets, other_buckets,
                       unanchored)

    def _selected_late(self, gi: int, group: dict) -> None:
        """A group seen stepping unanchored is selected now (subclasses
        refuse what would anchor fine-tuned weights)."""

    def _take(self, params: List[torch.Tensor], groups: List[dict]) -> None:
        """theta0 of ``params`` from their values now (before their first
        update); the first take of a run is checked first."""
        first = not self._entries and not self._restored
        if first:
            self._check_first_take()
        check_values(self.owner, params)
        bad = [
            k for k, p in enumerate(params)
            if not bool(torch.isfinite(p).all())
        ]
        if bad:
            shapes = [tuple(params[k].shape) for k in bad[:3]]
            raise ValueError(
                f'{self.owner}: {len(bad)} of the {len(params)} anchored '
                f'weights hold NaN or inf at their first update (shapes '
                f'{shapes}...), so theta0 cannot be taken from them: check '
                'the pretrained checkpoint (init_cfg / load_from).')
        if self._entries:
            logger.info(
                '%s: %d tensors that joined the optimizer since theta0 was '
                'taken are anchored to their values now, before their first '
                'update.', self.owner, len(params))
        self._on_take(groups)
        taken = [(p, p.detach().to(self.anchor_dtype or p.dtype, copy=True))
                 for p in params]
        self._check_cast([(p, p, t) for p, t in taken if t.dtype != p.dtype])
        for p, t in taken:
            self._entries[id(p)] = (p, t)
        self._not_pretrained = None
        if self.run_id is None:
            self.run_id = uuid.uuid4().hex[:12]

    def _check_cast(self, triples) -> None:
        """theta0 kept in ``anchor_dtype`` must hold the weights' values:
        a float16 theta0 of a weight above 65504 is inf, and the rollback
        would pull the weight there. ``triples``: (parameter, the values
        cast, theta0 after the cast)."""
        bad = [(p, v, t) for p, v, t in triples
               if not bool(torch.isfinite(t).all())]
        if bad:
            p, v, t = bad[0]
            name = (self.param_names
                    or {}).get(id(p), f'shape {tuple(p.shape)}')
            raise ValueError(
                f'{self.owner}: {len(bad)} weights do not fit '
                f'anchor_dtype={t.dtype} (e.g. {name}, largest |value| '
                f'{float(v.detach().abs().max()):.4g}, the dtype holds up to '
                f'{torch.finfo(t.dtype).max:.4g}): theta0 would be inf and '
                "the rollback would pull them there. Use anchor_dtype="
                "'bfloat16' (float32's range) or None (the weights' dtype).")

    def _check_first_take(self) -> None:
        """Before theta0 is first taken from the weights: they must be the
        pretrained ones (not a stepped optimizer's, not a resume's)."""
        if self._not_pretrained:
            raise RuntimeError(
                f'{self.owner}: theta0 would be taken from the current '
                f'weights, but the {type(self.optimizer).__name__} '
                f'{self._not_pretrained}: they are fine-tuned, not '
                'pretrained. Attach right after building the optimizer, '
                'then load_state_dict(<a state dict written with the '
                f'{self.owner}>) to restore theta0; to anchor to the current '
                'weights on purpose, pass from_current_weights=True.')
        iteration = self.position() if self.position is not None else None
        if iteration:
            entry = self._loaded_entry
            why = ('the optimizer state it loaded was written before the '
                   'first step' if entry is not None else
                   'the checkpoint holds no optimizer state (written with '
                   'checkpoint save_optimizer=False, or resumed with '
                   'resume_optimizer=False)')
            raise RuntimeError(
                f'{self.owner}: training resumed at iteration {iteration} '
                f'but no theta0 was restored: {why}. theta0, the pretrained '
                'weights every step is pulled back toward, is saved only '
                'with the optimizer state, and taking it from these '
                'fine-tuned weights would anchor the run to them. Resume '
                'from a checkpoint saved with the optimizer state (keep '
                'default_hooks.checkpoint.save_optimizer=True), or start '
                'the fine-tune again from the pretrained weights.')
        for check in self.before_first_take:
            check(self)

    def _on_take(self, groups: List[dict]) -> None:
        """What a subclass fixes when theta0 of ``groups`` is taken."""

    @torch.no_grad()
    def snapshot(self) -> None:
        """Take ``theta0`` of every tensor the anchor selects now, from
        their current values (what the first step does; again after that,
        it re-anchors to the weights now)."""
        if self._entries:
            self._entries = {}
            self._restored = False
            self._not_pretrained = None
        self._layouts.clear()
        self._groups.clear()
        self._current = self._layout()

    # ------------------------------------------------------------ hooks
    def _pre_step(self, optimizer, args, kwargs) -> None:
        with torch.no_grad():
            self._current = self._layout()
        self._before_update(self._current, kwargs)

    def _before_update(self, layout: _Layout, kwargs: dict) -> None:
        """Subclasses act before the update (a penalty adds its gradient)."""

    # ----------------------------------------------------------- state
    def saved_with_theta0(self) -> Dict[str, Dict[int, torch.Tensor]]:
        """What else is saved per anchored tensor: ``{name: {id(param):
        tensor}}`` (EWC: its Fisher)."""
        return {}

    def state_entry(self) -> dict:
        """The top-level entry: the set-up and what identifies the run."""
        return dict(
            format=2,
            taken=bool(self._entries),
            config=self.config,
            optimizer=type(self.optimizer).__name__,
            run_id=self.run_id)

    def _save_hook(self, optimizer, state_dict: dict) -> dict:
        """theta0 (and what :meth:`saved_with_theta0` adds) as a list per
        param group, in the order of the group's params, beside the group's
        lr and ``rollback``: every engine that saves, shards or re-keys the
        optimizer's state carries the groups' values unchanged."""
        if not self.active:
            return state_dict
        self.check_finite()
        values = dict(
            theta0={pid: t
                    for pid, (_, t) in self._entries.items()},
            **self.saved_with_theta0())
        groups = []
        for saved, group in zip(state_dict['param_groups'],
                                self.optimizer.param_groups):
            if any(id(p) in self._entries for p in group['params']):
                saved = dict(saved)
                for name, by_id in values.items():
                    saved[f'{self.state_key}.{name}'] = [
                        by_id.get(id(p)) for p in group['params']
                    ]
            groups.append(saved)
        state_dict['param_groups'] = groups
        state_dict[self.state_key] = self.state_entry()
        return state_dict

    @torch.no_grad()
    def check_finite(self) -> None:
        """Refuse to save weights that hold NaN / inf: every parameter of
        the optimizer, anchored or not (one multi-tensor norm per device
        and dtype); a checkpoint must never keep them silently."""
        if not self._entries:
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
            anchored = set(self._entries)
            where = ', '.join(
                f'{tuple(p.shape)} '
                f"({'' if id(p) in anchored else 'not '}anchored)"
                for p in bad[:3])
            raise FloatingPointError(
                f'{self.owner}: {len(bad)} weight tensors hold NaN or inf '
                f'({where}...), so this optimizer state is not saved: a '
                'diverged step (a NaN loss, a too high lr) would be kept in '
                'the checkpoint. Resume from the last complete checkpoint '
                '(work_dir/last_checkpoint names it) with a lower lr or '
                'clipped gradients (clip_grad=dict(max_norm=..., '
                'error_if_nonfinite=True) stops at the bad step).')

    #: per-parameter values the anchor saves (``'<state_key>.<name>'``)
    PER_PARAM = ('theta0', )

    def check_entry(self, entry: dict, per_param: Dict[int, dict]) -> None:
        """Subclasses check what else was saved (on load, after the set-up
        and before the layout); only checks."""

    def _restore_extras(self, loaded: List[Tuple[torch.Tensor, dict]]):
        """Subclasses restore what else was saved per anchored tensor
        (``loaded``: (param, its per-parameter values)), after theta0."""

    def _pop_saved(self, state_dict: dict) -> Tuple[Optional[dict], dict]:
        """Take the anchor's entries out of ``state_dict`` (torch must not
        load them into the groups): the top-level entry, and per state
        index the per-tensor values the groups carry under this anchor's
        keys (or the top-level entry of olor-mm 0.2 and earlier)."""
        key = self.state_key if self.state_key in state_dict else (
            LEGACY_STATE_KEY if LEGACY_STATE_KEY in state_dict else None)
        entry = state_dict.pop(key) if key else None
        state_dict.pop(LEGACY_STATE_KEY, None)
        prefix = self.state_key + '.'
        per_param: Dict[int, dict] = {}
        groups = []
        for group in state_dict.get('param_groups', []):
            mine = [
                n for n in group if isinstance(n, str) and n.startswith(prefix)
            ]
            if mine:
                group = dict(group)  # the caller's dicts stay as they are
                for n in mine:
                    for k, t in zip(group['params'], group.pop(n) or []):
                        if t is not None:
                            per_param.setdefault(k, {})[n[len(prefix):]] = t
            groups.append(group)
        if 'param_groups' in state_dict:
            state_dict['param_groups'] = groups
        for name in self.PER_PARAM:  # format 1 (olor-mm <= 0.2): top level
            for k, t in ((entry or {}).get(name) or {}).items():
                per_param.setdefault(k, {})[name] = t
        return entry, per_param

    def _load_pre_hook(self, optimizer, state_dict: dict) -> dict:
        """Pop and check the entries before torch loads the rest: they are
        there, of this optimizer type, of this set-up (and what
        :meth:`check_entry` adds), the param-group layout matches, theta0
        covers the anchored tensors with their shapes and finite values.

        The tensors anchored after the load are those of the groups the
        anchor selects *as saved*: torch restores the saved group values
        (``rollback`` included), so groups rebuilt with ``rollback_max=0``
        get the checkpoint's lam and its theta0 back.
        """
        self._pending = self._loaded_entry = None
        entry, per_param = self._pop_saved(state_dict)
        saved_setup = (entry or {}).get('config')
        saved_groups = state_dict.get('param_groups', [])
        groups = self.optimizer.param_groups
        if entry is None and not per_param and self.active:
            raise self._no_entry(saved_groups)
        if [len(g['params'])
                for g in saved_groups] != [len(g['params']) for g in groups]:
            if entry is not None:
                check_optimizer(self.owner, entry, self.optimizer)
                check_setup(self.owner, saved_setup, self.config)
            check_layout(state_dict, optimizer, saved_setup, self.config)
        # torch's fused / foreach kernels never check the state's shapes
        check_state_shapes(state_dict, self.optimizer, self.param_names)
        selected = [(sg, g) for sg, g in zip(saved_groups, groups)
                    if self._select(sg)]
        saved_theta0 = {
            k: v['theta0']
            for k, v in per_param.items() if 'theta0' in v
        }
        if not selected:
            if saved_theta0:
                logger.warning(
                    '%s: the loaded optimizer state holds theta0 but no '
                    'param group of it is anchored, so it is ignored.',
                    self.owner)
            return state_dict
        if entry is None and not saved_theta0:
            raise self._no_entry(saved_groups)
        if entry is not None:
            check_optimizer(self.owner, entry, self.optimizer)
            check_setup(self.owner, saved_setup, self.config)
        self.check_entry(entry or {}, per_param)
        self._loaded_entry = entry or {}
        if not saved_theta0:  # written before the first step
            return state_dict
        want = {
            k: p
            for sg, g in selected for k, p in zip(sg['params'], g['params'])
        }
        # theta0 of a frozen (or, sharded, an empty) tensor is its value:
        # checkpoints written before frozen tensors were anchored lack them
        saved_theta0 = dict(saved_theta0)
        for k, p in want.items():
            if k not in saved_theta0 and (not p.requires_grad
                                          or p.numel() == 0):
                saved_theta0[k] = p.detach()
        check_theta0(self.owner, saved_theta0, want, self.param_names)
        # a theta0 the anchor's dtype cannot hold: refused before torch
        # loads anything (kept in anchor_dtype by the post-hook)
        self._check_cast([
            (p, saved_theta0[k], saved_theta0[k].to(self.anchor_dtype))
            for k, p in want.items()
            if self.anchor_dtype is not None and torch.finfo(
                self.anchor_dtype).max < torch.finfo(saved_theta0[k].dtype).max
        ])
        self._pending = [(p, saved_theta0[k], per_param.get(k, {}))
                         for k, p in want.items()]
        return state_dict

    def _no_entry(self, saved_groups=()) -> KeyError:
        if any(g.get(MARK_KEY) for g in saved_groups):
            return KeyError(
                f'{self.owner}: the optimizer state to load holds no theta0, '
                f'yet its param groups carry {MARK_KEY!r}: it was written by '
                'an optimizer that had been anchored but had no anchor '
                'attached when it saved (a copy.deepcopy or pickle of the '
                'optimizer, which drops its hooks, or one after '
                'handle.remove()), so theta0 was not saved. Save the state '
                'dict of the optimizer the rollback is attached to (to keep '
                'a copy: copy.deepcopy(optimizer.state_dict())); this one '
                f'can only start a new fine-tune ({NEW_FINE_TUNE}).')
        return KeyError(
            f'{self.owner}: the optimizer state to load has no '
            f"'{self.state_key}' entry, so theta0 (the pretrained weights "
            'the fine-tuning is anchored to) cannot be restored. Resume '
            f'from a checkpoint written with the {self.owner}, or '
            f'{NEW_FINE_TUNE}.')

    def _load_post_hook(self, optimizer) -> None:
        """Commit the theta0 checked by the pre-hook."""
        entry = self._loaded_entry
        if entry is not None and entry.get('run_id'):
            self.run_id = entry['run_id']
        if self._pending is None:
            return
        restored, self._pending = self._pending, None
        kept = {(t.dtype, self.anchor_dtype or p.dtype)
                for p, t, _ in restored}
        lossy = [(a, b) for a, b in kept
                 if a != b and torch.finfo(b).bits < torch.finfo(a).bits]
        if lossy:
            logger.warning(
                '%s: theta0 was saved in %s and is kept in %s now '
                '(anchor_dtype of the config): rounded on resume. Resume '
                'with the anchor_dtype it was written with to keep it '
                'exact.', self.owner, lossy[0][0], lossy[0][1])
        self._entries = {
            id(p): (p,
                    t.to(
                        device=p.device,
                        dtype=self.anchor_dtype or p.dtype,
                        copy=True))
            for p, t, _ in restored
        }
        self._restored = True
        self._not_pretrained = None
        # torch made new group dicts: they are seen again at the next step
        self._groups.clear()
        self._layouts.clear()
        for g in self.optimizer.param_groups:
            if self._select(g):
                g[MARK_KEY] = self.state_key
        self._restore_extras([(p, extra) for p, _, extra in restored])

    def remove(self) -> None:
        """Detach from the optimizer: no more hooks, no state entry."""
        for h in self._handles:
            h.remove()
        self._handles = []
        for g in self.optimizer.param_groups:
            if g.get(MARK_KEY) == self.state_key:
                g[MARK_KEY] = DETACHED
        attached = copy_guard.ATTACHED.get(self.optimizer, {})
        if attached.get(self.state_key) is self:
            del attached[self.state_key]
        if not attached:
            copy_guard.release(self.optimizer)


def check_values(owner: str, params) -> None:
    """Refuse to anchor tensors that hold no values (the meta device).

    Raises:
        ValueError: naming how many and what to do.
    """
    meta = [p for p in params if p.is_meta]
    if meta:
        raise ValueError(
            f'{owner}: {len(meta)} anchored weights are on the meta device '
            '(a model built without memory) and hold no values to take '
            'theta0 from: materialise the model (to_empty(device=...) and '
            'load its pretrained weights) before training starts.')
