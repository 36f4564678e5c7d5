"""Narrow fixes for the pinned OpenMMLab stack on current PyTorch.

MMEngine 0.10.7 calls ``torch.load(filename, map_location=...)`` for local
checkpoints. Since PyTorch 2.6 ``torch.load`` defaults to
``weights_only=True``, which refuses the objects MMEngine itself writes into
its checkpoints (``HistoryBuffer`` in the message hub, numpy scalars, ...),
so ``resume`` and ``load_from`` of MMEngine's own checkpoints fail with
``Unsupported global: ...HistoryBuffer``.

The fix re-registers MMEngine's loader for local paths (the scheme with the
empty prefix) with an explicit ``weights_only=False``: local checkpoints are
files the user named in the config, i.e. trusted, exactly as MMEngine meant
them to be loaded. Remote schemes (``http://``, ``open-mmlab://``, ...) keep
torch's safe default; the ImageNet weights they fetch are plain tensors.

mmcv 2.1.0's CPU kernels of ``nms`` and ``roi_align`` accept float32 and
float64 only, so detection under CPU autocast (bfloat16, what ``--amp`` gives
on a machine without GPU) stops with ``expected scalar type Float but found
BFloat16``. :func:`run_mmcv_ops_in_fp32_under_cpu_autocast` wraps those
autograd Functions so that, on CPU tensors in bfloat16/float16, their kernels
run in float32 and their floating outputs and gradients come back in the
input's dtype, as a kernel with bfloat16 support would return them. Nothing
changes for float32 inputs or for CUDA tensors.
"""
import functools
import inspect
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = [
    'load_from_local_trusted', 'run_mmcv_ops_in_fp32_under_cpu_autocast',
    'apply_compat_fixes'
]

_TORCH_HAS_WEIGHTS_ONLY = 'weights_only' in inspect.signature(
    torch.load).parameters


def load_from_local_trusted(filename: str, map_location=None):
    """MMEngine's ``load_from_local`` with ``weights_only=False``.

    Args:
        filename (str): Local checkpoint path (``~`` is expanded).
        map_location: As :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if _TORCH_HAS_WEIGHTS_ONLY:
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    return torch.load(filename, map_location=map_location)


def _is_low_cpu(x) -> bool:
    return (torch.is_tensor(x) and x.device.type == 'cpu'
            and x.dtype in (torch.bfloat16, torch.float16))


def _in_fp32(function):
    """Wrap an autograd forward/backward to run its CPU kernel in float32."""

    @functools.wraps(function)
    def wrapper(ctx, *args, **kwargs):
        low = next((a.dtype for a in args if _is_low_cpu(a)), None)
        if low is None:
            return function(ctx, *args, **kwargs)
        args = tuple(a.float() if _is_low_cpu(a) else a for a in args)
        with torch.autocast('cpu', enabled=False):
            out = function(ctx, *args, **kwargs)
        if isinstance(out, tuple):
            return tuple(o.to(low) if torch.is_tensor(o) and
                         o.is_floating_point() else o for o in out)
        return out.to(low) if out.is_floating_point() else out

    wrapper._olor_fp32_on_cpu = True
    return wrapper


def run_mmcv_ops_in_fp32_under_cpu_autocast() -> None:
    """Let mmcv's ``NMSop`` and ``RoIAlignFunction`` take bfloat16 on CPU.

    Idempotent; float32 inputs and CUDA tensors take the original path.
    Without mmcv's compiled ops (``mmcv.ops`` does not import) there is
    nothing to fix; ``make setup`` refuses such an install anyway.
    """
    try:
        from mmcv.ops.nms import NMSop
        from mmcv.ops.roi_align import RoIAlignFunction
    except ImportError:
        return
    for function in (NMSop, RoIAlignFunction):
        if getattr(function.forward, '_olor_fp32_on_cpu', False):
            continue
        function.forward = staticmethod(_in_fp32(function.forward))
        if 'backward' in vars(function):
            function.backward = staticmethod(_in_fp32(function.backward))


def apply_compat_fixes() -> None:
    """Apply every fix of this module; idempotent."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_trusted, force=True)
    run_mmcv_ops_in_fp32_under_cpu_autocast()
