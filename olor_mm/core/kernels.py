"""Which implementation of a torch optimizer runs: fused, foreach, default.

torch's optimizers have three implementations of the same update: the
single-tensor loop, the multi-tensor ``foreach`` one and, for SGD, Adam,
AdamW and Adagrad, a ``fused`` kernel. They differ by float rounding only.
torch picks ``foreach`` on CUDA and the single-tensor loop on the CPU unless
told; the fused kernel, usually the fastest on both, must be asked for.
:func:`choose_impl` asks for it where it works (tried on a one-element
tensor of the parameters' device and dtype), else for ``foreach``.

This module imports nothing of MMEngine.
"""
import inspect
from typing import Dict, List, Tuple

import torch

#: what ``paramwise_cfg.optimizer_impl`` accepts
IMPLS = ('auto', 'fused', 'foreach', 'torch_default')


def _accepts(optimizer_cls, key: str) -> bool:
    try:
        return key in inspect.signature(optimizer_cls).parameters
    except (TypeError, ValueError):
        return False


def fused_works(optimizer_cls, device: torch.device,
                dtype: torch.dtype) -> bool:
    """Whether ``optimizer_cls(..., fused=True)`` builds and steps here."""
    if not _accepts(optimizer_cls, 'fused'):
        return False
    p = torch.zeros(1, device=device, dtype=dtype, requires_grad=True)
    try:
        optimizer = optimizer_cls([p], lr=1e-3, fused=True)
        p.grad = torch.zeros_like(p)
        optimizer.step()
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


def choose_impl(optimizer_cls,
                groups: List[dict],
                requested: str = 'auto',
                optimizer_kwargs: Dict = None) -> Tuple[str, Dict]:
    """The implementation to build ``optimizer_cls`` with.

    Args:
        optimizer_cls: The torch optimizer class.
        groups: Its param groups (their first parameter gives the device
            and dtype).
        requested: ``'auto'`` (fused where it works, else foreach),
            ``'fused'``, ``'foreach'`` or ``'torch_default'``.
        optimizer_kwargs: The optimizer's config; a ``fused`` or ``foreach``
            set there wins over ``'auto'``.

    Returns:
        tuple: the name of what runs and the keyword arguments that select
        it (``{'fused': True}``, ``{'foreach': True}`` or ``{}``).

    Raises:
        ValueError: for an unknown ``requested``, or ``'fused'`` /
            ``'foreach'`` asked of an optimizer or device without it.
    """
    if requested not in IMPLS:
        raise ValueError(
            f'paramwise_cfg.optimizer_impl={requested!r} is unknown; use one '
            f'of {IMPLS}.')
    kwargs = optimizer_kwargs or {}
    other = {'fused': 'foreach', 'foreach': 'fused'}.get(requested)
    if other and kwargs.get(other):
        raise ValueError(
            f"paramwise_cfg.optimizer_impl='{requested}' and "
            f'optimizer.{other}=True ask for two kernels; remove '
            f"optimizer.{other}, or set optimizer_impl='auto' to keep it.")
    if requested == 'auto':
        for key in ('fused', 'foreach'):
            if kwargs.get(key) is not None:
                return (f'{key} (optimizer.{key}={kwargs[key]})'
                        if kwargs[key] else 'torch_default'), {}
    if requested == 'torch_default':
        return 'torch_default', {}
    first = next((p for g in groups for p in g['params']), None)
    device = first.device if first is not None else torch.device('cpu')
    dtype = first.dtype if first is not None else torch.float32
    name = optimizer_cls.__name__
    if requested in ('auto', 'fused') and fused_works(optimizer_cls, device,
                                                      dtype):
        return 'fused', dict(fused=True)
    if requested == 'fused':
        raise ValueError(
            f"paramwise_cfg.optimizer_impl='fused': torch's {name} has no "
            f'fused kernel for {device.type} / {dtype}; use '
            "optimizer_impl='auto' (the fastest that works) or 'foreach'.")
    if _accepts(optimizer_cls, 'foreach'):
        return 'foreach', dict(foreach=True)
    if requested == 'foreach':
        raise ValueError(
            f"paramwise_cfg.optimizer_impl='foreach': {name} takes no "
            "foreach argument; use optimizer_impl='auto' or "
            "'torch_default'.")
    return 'torch_default', {}
