"""The maths of OLOR's rollback, free of MMEngine.

Two pieces, both from "One step Learning, One step Review" (Huang et al.,
AAAI 2024):

* :func:`layerwise_rollback` -- the layer-wise penalty of Eq. 8/9::

      lam_i = iota2 + (1 - i / n) ** gamma * (iota1 - iota2)

  for layer ``i`` of ``n + 1`` pretrained layers (``i = 0`` is the input side).

* :func:`rollback_` -- the "review" step applied after the optimizer's
  "learning" step, a lerp of every rolled-back weight toward its pretrained
  value ``theta0``::

      theta_t = theta_hat_t + lam_eff * (theta0 - theta_hat_t)
              = (1 - lam_eff) * theta_hat_t + lam_eff * theta0

  For plain SGD (``theta_hat_t = theta_{t-1} - eta_t * g_t``) this is Eq. 6.
  It runs as one multi-tensor ``torch._foreach_lerp_`` per (device, dtype)
  bucket, with one weight per tensor, so a per-layer ``lam`` costs no extra
  pass and no Python loop over the tensors' elements.

  Weights in bfloat16 / float16 cannot hold a small pull: a bfloat16 weight
  10 % from theta0 with ``lam = 0.01`` moves by a tenth of its spacing, and
  the rounding undoes every step. For them the lerp runs in float32 with
  the rounding error carried to the next step (compensated summation: a
  float32 ``residual`` per element, ``r_t = target_t - round(target_t)``),
  so that the pull applied over any number of steps is Eq. 6's within half
  a spacing of the weight's dtype.

  With a per-element importance ``w`` in [0, 1] (the importance-weighted
  rollback, :mod:`olor_mm.core.importance`) the pull of element ``j`` is
  ``lam_eff * w_j``::

      theta_t[j] = theta_hat_t[j]
                   + lam_eff * w_j * (theta0[j] - theta_hat_t[j])

  the same lerp with a tensor of weights: one ``torch._foreach_mul`` makes
  ``lam_eff * w`` of the bucket, one ``torch._foreach_lerp_`` applies it.
"""
import math
import numbers
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Tuple

import torch

__all__ = [
    'layerwise_rollback', 'check_rollback_range', 'rollback_',
    'group_by_device_and_dtype', 'is_real', 'as_real', 'is_low_precision'
]


def as_real(value):
    """``value`` as a float when it is a real number of another kind (a
    numpy scalar, a 0-d tensor); anything else unchanged."""
    if isinstance(value, bool):
        return value
    if torch.is_tensor(value):
        real = value.dim() == 0 and value.dtype != torch.bool and \
            not value.dtype.is_complex
        return float(value) if real else value
    if isinstance(value, numbers.Real) and not isinstance(value, (int, float)):
        return float(value)  # numpy.float32, numpy.int64, fractions ...
    return value


def is_real(value) -> bool:
    """A finite int or float, and not a bool (config values' check)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_rollback_range(iota1: float, iota2: float, gamma: float) -> None:
    """Validate Eq. 8/9's hyper-parameters, naming the config keys.

    Raises:
        ValueError: if ``rollback_max`` (iota1) or ``rollback_min`` (iota2)
            lies outside [0, 1], if ``rollback_min > rollback_max`` or if
            ``rollback_power`` (gamma) is negative or not finite.
    """
    for key, value in (('rollback_max', iota1), ('rollback_min', iota2)):
        if not is_real(value) or not 0.0 <= value <= 1.0:
            raise ValueError(
                f'{key}={value!r} is not a number in [0, 1]: it is the '
                'fraction of the way back to the pretrained weights taken '
                'after each step; set it in [0, 1] (the paper uses 0.01; '
                f'paramwise_cfg.{key} in a config).')
    if iota2 > iota1:
        raise ValueError(
            f'rollback_min={iota2} > rollback_max={iota1}: the '
            'shallowest layer gets rollback_max and the deepest rollback_min; '
            'swap them or set rollback_min <= rollback_max.')
    if not is_real(gamma) or gamma < 0:
        raise ValueError(
            f'rollback_power={gamma!r} must be a finite number '
            '>= 0 (gamma of Eq. 9; 0 gives a uniform rollback_max, 1 a '
            'linear decay with depth).')


def layerwise_rollback(i: int,
                       n: int,
                       iota1: float,
                       iota2: float,
                       gamma: float,
                       check: bool = True) -> float:
    """Rollback coefficient ``lam_i`` of layer ``i`` (Eq. 8/9).

    ``lam_i = iota2 + (1 - i / n) ** gamma * (iota1 - iota2)``, with
    ``lam = iota1`` when there is one layer (``n = 0``) and ``0 ** 0 = 1`` so
    that ``gamma = 0`` gives a uniform ``iota1``. Unlike the reference code no
    epsilon is subtracted inside the power, so a non-integer ``gamma`` stays
    real at the deepest layer.

    Args:
        i (int): Depth of the layer, 0 for the shallowest.
        n (int): Depth of the deepest layer (number of layers - 1).
        iota1 (float): ``rollback_max``, the coefficient of layer 0.
        iota2 (float): ``rollback_min``, the coefficient of layer ``n``.
        gamma (float): ``rollback_power``, how fast lam decays with depth.
        check (bool): Validate iota1, iota2, gamma (callers that computed
            every layer's lam after one :func:`check_rollback_range` pass
            False).
    """
    if check:
        check_rollback_range(iota1, iota2, gamma)
    if not 0 <= i <= n:
        raise ValueError(f'layer index {i} is outside [0, {n}]')
    if n == 0:
        return float(iota1)
    # iota2 + f * (iota1 - iota2), written so that f = 1 (layer 0) gives
    # iota1 and f = 0 (layer n) gives iota2 exactly, without rounding.
    f = (1.0 - i / n)**gamma
    return float(f * iota1 + (1.0 - f) * iota2)


def group_by_device_and_dtype(
    tensors: Iterable[torch.Tensor]
) -> Dict[Tuple[torch.device, torch.dtype], List[int]]:
    """Indices of ``tensors`` bucketed by (device, dtype), order kept.

    ``torch._foreach_*`` kernels need every list on one device and of one
    dtype; this is the bucketing ``torch.optim`` does, done once.
    """
    buckets: Dict[Tuple[torch.device, torch.dtype],
                  List[int]] = defaultdict(list)
    for k, t in enumerate(tensors):
        buckets[(t.device, t.dtype)].append(k)
    return dict(buckets)


def is_low_precision(dtype: torch.dtype) -> bool:
    """Whether weights of ``dtype`` (bfloat16, float16) round a small
    rollback away, and so roll back with a carried residual."""
    return dtype.is_floating_point and torch.finfo(dtype).bits <= 16


@torch.no_grad()
def rollback_(params: List[torch.Tensor],
              anchors: List[torch.Tensor],
              weights: List[float],
              residuals: Optional[List[torch.Tensor]] = None,
              importance: Optional[List[torch.Tensor]] = None) -> None:
    """In place ``p <- p + w * (theta0 - p)`` for every (p, theta0, w).

    Anchors of the parameters' dtype: one ``torch._foreach_lerp_`` call;
    ``w = 0`` leaves ``p`` bit for bit, ``w = 1`` sets it exactly to
    ``theta0`` (torch's lerp evaluates ``end - (end - start) * (1 - w)`` for
    ``w >= 0.5``). Anchors stored in a narrower dtype (``anchor_dtype``):
    ``d = theta0 - p`` in the parameters' dtype, ``d *= w``, ``p += d``
    (three multi-tensor passes and a transient copy of the bucket).

    With ``residuals`` (low-precision weights, :func:`is_low_precision`):
    in float32, ``q = p + r``, ``q <- q + w * (theta0 - q)``, ``p <-
    round(q)``, ``r <- q - p``: the rounding error is carried, never lost,
    so a pull smaller than the weights' spacing still adds up over steps;
    ``w = 1`` still gives ``theta0`` exactly.

    Args:
        params: Weights after the optimizer step (``theta_hat_t``), all on one
            device and of one dtype.
        anchors: Their pretrained values ``theta0``, on the same device, all
            of one dtype.
        weights: One ``lam_eff`` per tensor.
        residuals (list, optional): One float32 tensor per weight, the
            rounding carried from the previous step (updated in place).
        importance (list, optional): One tensor per weight, of its shape,
            values in [0, 1]: element ``j`` of a weight moves by
            ``w * importance[j]`` of the way to theta0 (float32 with
            ``residuals``, else the weights' dtype).
    """
    if not params:
        return
    if importance is not None:
        # lam_eff * w_j per element: lerp takes a tensor of weights
        weights = torch._foreach_mul(importance, weights)
    if residuals is not None:
        work = [p.float() for p in params]
        torch._foreach_add_(work, residuals)
        torch._foreach_lerp_(work, [a.float() for a in anchors], weights)
        torch._foreach_copy_(params, work)
        torch._foreach_sub_(work, [p.float() for p in params])
        torch._foreach_copy_(residuals, work)
        return
    if anchors[0].dtype == params[0].dtype:
        torch._foreach_lerp_(params, anchors, weights)
        return
    diff = torch._foreach_sub(anchors, params)  # promoted to params' dtype
    torch._foreach_mul_(diff, weights)
    torch._foreach_add_(params, diff)
