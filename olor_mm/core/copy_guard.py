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

This module imports nothing of MMEngine.
"""
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
