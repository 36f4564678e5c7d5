"""When theta0 is taken under MMEngine: at training start, in one place.

The rule is :meth:`olor_mm.core.theta0.Anchor.start_training`: theta0 is the
weights when training starts, after ``init_weights`` and ``load_from`` /
``resume``, unless a resume restored it; resuming (``iteration > 0``)
without a restored theta0 is an error. Only the way training start is
reached differs, and this module is every MMEngine way:

- the Runner calls ``optim_wrapper.initialize_count_status(model,
  init_counts, max_counts)`` there: :func:`take_theta0_at_training_start`
  extends it on the wrapper instance (every wrapper
  ``LayerwiseRollbackConstructor`` builds, whatever its type, and olor-mm's
  own wrappers built without it), so no wrapper class overrides it;
- FlexibleRunner's strategies call it only with gradient accumulation:
  ``FSDPStrategy.resume`` calls :func:`start_training`
  (:mod:`olor_mm.engine.fsdp`).

Where neither runs (plain PyTorch, a FlexibleRunner that does not resume),
the first optimizer step takes theta0 before any weight moves (the
rollback's step pre-hook, the penalty wrappers' ``step``:
:meth:`~olor_mm.core.theta0.Anchor.ensure_theta0`).
"""
import types
from typing import Optional

import torch.nn as nn

from ..core.theta0 import find_anchor


def start_training(optim_wrapper,
                   iteration: int,
                   model: Optional[nn.Module] = None,
                   where: str = '') -> None:
    """Take (or check the restored) theta0 of ``optim_wrapper``'s anchor,
    then what its wrapper takes with it (``_at_training_start(model)``:
    EWC's Fisher information), when ``model`` is given."""
    anchor = find_anchor(optim_wrapper.optimizer)
    if anchor is None:
        return
    anchor.start_training(iteration, where)
    after = getattr(optim_wrapper, '_at_training_start', None)
    if after is not None and model is not None:
        after(model)


def initialize_count_status(self, model, init_counts: int,
                            max_counts: int) -> None:
    """The wrapper class's ``initialize_count_status``, then
    :func:`start_training` (bound to an instance by
    :func:`take_theta0_at_training_start`)."""
    type(self).initialize_count_status(self, model, init_counts, max_counts)
    start_training(self, init_counts, model)


def take_theta0_at_training_start(optim_wrapper) -> None:
    """Make ``optim_wrapper`` take theta0 where the Runner starts training.

    Binds :func:`initialize_count_status` to the instance (the class is
    untouched; ``copy.deepcopy`` rebinds it to the copy); idempotent.
    """
    optim_wrapper.initialize_count_status = types.MethodType(
        initialize_count_status, optim_wrapper)
