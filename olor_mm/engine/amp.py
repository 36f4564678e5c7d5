"""Mixed precision without CUDA: :class:`CPUAmpMixin`, shared by the AMP
twins of the OLOR, L2-SP and EWC wrappers."""
import logging
from typing import Union

import torch
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from ..compat import run_mmcv_ops_in_fp32_under_cpu_autocast


def _cpu_loss_scaler(loss_scale: Union[str, float, dict]):
    """``torch.amp.GradScaler('cpu')`` configured like AmpOptimWrapper's."""
    if loss_scale == 'dynamic':
        return torch.amp.GradScaler('cpu'), None
    if isinstance(loss_scale, float):
        return torch.amp.GradScaler('cpu', init_scale=loss_scale), loss_scale
    if isinstance(loss_scale, dict):
        return torch.amp.GradScaler('cpu', **loss_scale), None
    raise TypeError('loss_scale must be of type float, dict, or "dynamic", '
                    f'but got {loss_scale}')


class CPUAmpMixin:
    """Lets an AmpOptimWrapper subclass run without CUDA, in bfloat16.

    On a machine with an accelerator MMEngine's ``AmpOptimWrapper.__init__``
    runs unchanged. On the CPU it autocasts to bfloat16 (the only dtype CPU
    autocast supports) with a ``torch.amp.GradScaler('cpu')``, and refuses
    any other dtype rather than train silently in float32; mmcv's CPU ops
    that lack bfloat16 kernels run in float32 there
    (:func:`olor_mm.compat.run_mmcv_ops_in_fp32_under_cpu_autocast`).
    """

    def __init__(self,
                 optimizer,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 **kwargs):
        if get_device() != 'cpu':
            AmpOptimWrapper.__init__(
                self,
                loss_scale=loss_scale,
                dtype=dtype,
                use_fsdp=use_fsdp,
                optimizer=optimizer,
                **kwargs)
            return
        if dtype not in (None, 'bfloat16', torch.bfloat16):
            raise ValueError(
                f'optim_wrapper.dtype={dtype!r}: without a GPU, mixed '
                'precision runs on the CPU, where autocast supports only '
                "bfloat16; set dtype='bfloat16' (or leave it unset), or "
                'train on a GPU.')
        run_mmcv_ops_in_fp32_under_cpu_autocast()
        print_log(
            f'{type(self).__name__}: mixed precision on the CPU runs in '
            'bfloat16, several times slower than float32 (measured in '
            'docs/performance.md#mixed-precision-on-the-cpu): use it to '
            'check a GPU config on the CPU, train without --amp.',
            logger='current',
            level=logging.WARNING)
        # MMEngine's AmpOptimWrapper asserts CUDA; set it up for the CPU.
        OptimWrapper.__init__(self, optimizer=optimizer, **kwargs)
        self.loss_scaler, self._scale_update_param = _cpu_loss_scaler(
            loss_scale)
        self.cast_dtype = torch.bfloat16
