"""The copy guard: an anchored optimizer that lost its anchor never steps.

``copy.deepcopy``, pickling and ``load_state_dict()`` into a bare
optimizer keep the param groups but drop the optimizer's hooks, so a copy
of an anchored optimizer would train without its rollback (or penalty),
silently. The anchors mark the groups they hold (:data:`MARK_KEY`, a
group key torch keeps through all three); one process-wide optimizer step
pre-hook (torch's ``register_optimizer_step_pre_hook``) refuses to step an
optimizer whose groups carry the mark while no anchor is attached to it.

The hook is installed by the first anchor made in the process
(:func:`install`), never by ``import olor_mm``: a process that uses no
anchor keeps torch's optimizers exactly as they are.

A ``copy.deepcopy`` of an anchored optimizer (``best =
copy.deepcopy(optimizer)``) would also save a state dict without theta0,
silently: the anchored optimizer gets ``__deepcopy__`` (an attribute of
that one instance, removed with the anchor) that gives the copy a
state-dict pre-hook refusing to save while no anchor is attached to it.

This module imports nothing of MMEngine.
"""
import copy
import weakref

from torch.optim.optimizer import register_optimizer_step_pre_hook

#: param-group key naming the anchor that holds the group's theta0 (its
#: state key; :data:`DETACHED` after ``remove()``)
MARK_KEY = 'olor_anchor'
DETACHED = 'detached'

#: optimizer -> {state key: anchor} of every anchor attached to it
ATTACHED: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()

#: optimizers that have stepped since the guard was installed
STEPPED: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()

_HANDLE = []


def _guard_step(optimizer, args, kwargs) -> None:
    STEPPED[optimizer] = True
    if ATTACHED.get(optimizer):
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


def install() -> None:
    """Install the guard (once per process)."""
    if not _HANDLE:
        _HANDLE.append(register_optimizer_step_pre_hook(_guard_step))


def has_stepped(optimizer) -> bool:
    """Whether ``optimizer`` stepped while the guard was installed."""
    return bool(STEPPED.get(optimizer))


def _refuse_unanchored_save(optimizer) -> None:
    """A state-dict pre-hook of a copy: no theta0 to save, so no save."""
    if ATTACHED.get(optimizer):
        return
    marked = [
        gi for gi, g in enumerate(optimizer.param_groups)
        if g.get(MARK_KEY) not in (None, DETACHED)
    ]
    if marked:
        raise RuntimeError(
            f'this {type(optimizer).__name__} is a copy.deepcopy of an '
            f'optimizer with {optimizer.param_groups[marked[0]][MARK_KEY]!r} '
            'attached; the copy has no anchor, so its state dict would '
            'hold no theta0 and could never resume the run. Save the '
            'state dict of the optimizer the anchor is attached to (to '
            'keep a copy of it: copy.deepcopy(optimizer.state_dict())), or '
            'attach the anchor to the copy and load the original\'s state '
            'dict first.')


class _CopyWithoutAnchor:
    """``__deepcopy__`` of an anchored optimizer instance: torch's own
    copy, plus :func:`_refuse_unanchored_save` on the copy."""

    def __init__(self, optimizer):
        self._optimizer = weakref.ref(optimizer)

    def __call__(self, memo):
        optimizer = self._optimizer()
        own = optimizer.__dict__.pop('__deepcopy__')
        try:
            twin = copy.deepcopy(optimizer, memo)
        finally:
            optimizer.__dict__['__deepcopy__'] = own
        twin.register_state_dict_pre_hook(_refuse_unanchored_save)
        return twin


def protect_copies(optimizer) -> None:
    """Give ``optimizer`` (anchored) the ``__deepcopy__`` above."""
    optimizer.__dict__['__deepcopy__'] = _CopyWithoutAnchor(optimizer)


def release(optimizer) -> None:
    """Take it back (the anchor is removed)."""
    if isinstance(optimizer.__dict__.get('__deepcopy__'), _CopyWithoutAnchor):
        del optimizer.__dict__['__deepcopy__']
