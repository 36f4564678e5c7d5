"""Multi-tensor squared norms (plain torch), shared by every measure of
distance to theta0: relative drift (:mod:`olor_mm.core.drift`, the drift hook)
and the L2-SP penalty.

For tensors ``t_1 .. t_K`` (a group of parameters taken together)::

    squared_norm(t)        = sum_k ||t_k||_F^2
    squared_distance(a, b) = sum_k ||a_k - b_k||_F^2
    relative_terms(a, b)   = (squared_distance(a, b), squared_norm(b))

(relative drift is ``sqrt`` of the ratio of the last two).

One ``torch._foreach_norm`` per call; the sum is accumulated in float64, so
that bf16 / fp16 parameters and many tensors lose nothing in the sum.
"""
from typing import Sequence, Tuple

import torch

__all__ = ['squared_norm', 'squared_distance', 'relative_terms']


def squared_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_k ||t_k||^2`` as a float64 0-dim tensor (0 for no tensors),
    on the device of the first tensor."""
    tensors = list(tensors)
    if not tensors:
        return torch.zeros((), dtype=torch.float64)
    norms = torch._foreach_norm(tensors)
    device = norms[0].device
    return torch.stack([n.to(device, torch.float64)
                        for n in norms]).square().sum()


def _cast_like(a, b):
    return [y.to(x.dtype) if y.dtype != x.dtype else y for x, y in zip(a, b)]


def squared_distance(a: Sequence[torch.Tensor],
                     b: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_k ||a_k - b_k||^2`` (float64, 0-dim); ``b_k`` may be of a
    narrower dtype than ``a_k`` (an anchor kept in bf16): it is cast."""
    a = list(a)
    if not a:
        return torch.zeros((), dtype=torch.float64)
    return squared_norm(torch._foreach_sub(a, _cast_like(a, b)))


def relative(num: float, den: float) -> float:
    """``sqrt(num / den)`` from the two sums of :func:`relative_terms`:
    the relative distance ``||a - b|| / ||b||``. An all-zero ``b`` gives
    ``inf`` where ``a`` moved away from it, 0 where it did not."""
    if den:
        return (num / den)**0.5
    return 0.0 if num == 0 else float('inf')


def relative_terms(
        a: Sequence[torch.Tensor],
        b: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(sum_k ||a_k - b_k||^2, sum_k ||b_k||^2)``, both with ``b`` cast to
    ``a``'s dtypes (float64, 0-dim)."""
    a = list(a)
    b = _cast_like(a, b)
    return squared_distance(a, b), squared_norm(b)
