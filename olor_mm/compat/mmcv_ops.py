"""mmcv's CPU ``nms`` / ``roi_align`` under CPU autocast (bfloat16).

The bug: mmcv 2.1.0's CPU kernels of ``nms`` and ``roi_align`` accept
float32 and float64 only, so detection under CPU autocast (bfloat16, what
``--amp`` gives on a machine without GPU) stops with ``expected scalar type
Float but found BFloat16``. The fix wraps those autograd Functions so that,
on CPU tensors in bfloat16/float16, their kernels run in float32 and their
floating outputs and gradients come back in the input's dtype, as a kernel
with bfloat16 support would return them. Nothing changes for float32 inputs
or for CUDA tensors. It is applied when an olor-mm mixed-precision wrapper is
built on the CPU, not at import.
"""
import functools

import torch


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

        def back(o):
            floating = torch.is_tensor(o) and o.is_floating_point()
            return o.to(low) if floating else o

        return tuple(map(back, out)) if isinstance(out, tuple) else back(out)

    wrapper._olor_fp32_on_cpu = True
    return wrapper


def _functions():
    from mmcv.ops.nms import NMSop
    from mmcv.ops.roi_align import RoIAlignFunction
    return NMSop, RoIAlignFunction


def has_bug() -> bool:
    """The installed mmcv's CPU nms refuses bfloat16 (tried on two boxes).

    False without mmcv's compiled ops (nothing to fix; ``make setup``
    refuses such an install anyway) or once fixed.
    """
    try:
        from mmcv.ops import nms
        NMSop, _ = _functions()
    except ImportError:
        return False
    if getattr(NMSop.forward, '_olor_fp32_on_cpu', False):
        return False
    boxes = torch.tensor([[0., 0., 4., 4.], [1., 1., 5., 5.]],
                         dtype=torch.bfloat16)
    try:
        nms(boxes, torch.tensor([0.9, 0.8], dtype=torch.bfloat16), 0.5)
    except RuntimeError:
        return True
    return False


def apply() -> bool:
    """Run ``NMSop`` / ``RoIAlignFunction`` in float32 on CPU bf16/fp16.

    Idempotent; does nothing where the installed mmcv handles bfloat16.
    """
    if not has_bug():
        return False
    for function in _functions():
        function.forward = staticmethod(_in_fp32(function.forward))
        if 'backward' in vars(function):
            function.backward = staticmethod(_in_fp32(function.backward))
    return True
