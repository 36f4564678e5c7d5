"""Data-parallel training on a machine without GPU (gloo processes).

The bug: MMEngine's ``init_dist(launcher='pytorch')`` (up to 0.10.7) calls
``torch.cuda.set_device`` whenever no NPU/MLU/MUSA is found, CUDA or not,
and the runtimes of MMDetection / MMSegmentation ask for the ``nccl``
backend, so ``tools/dist_train.sh`` on a machine without GPU (CPU
data-parallel with ``gloo``: CI, debugging) fails before training, and so
does FlexibleRunner's ``DeepSpeedStrategy`` (``init_backend='deepspeed'``)
on DeepSpeed's CPU accelerator. The fix skips ``set_device`` and takes
``gloo`` when no accelerator exists (through ``deepspeed.init_distributed``
for DeepSpeed, as MMEngine does); with CUDA (or NPU/MLU/MUSA) MMEngine's
own function runs unchanged. The Runner's DDP
wrapper also passes ``device_ids=[LOCAL_RANK]``, invalid for CPU modules:
:func:`cpu_ddp_model_wrapper_cfg` sets ``device_ids=None`` in the config
(the command-line tools apply it).
"""
import functools
import inspect

import torch


def _no_accelerator() -> bool:
    from mmengine.device import get_device
    return get_device() == 'cpu'


def has_bug() -> bool:
    """MMEngine's ``_init_dist_pytorch`` sets a CUDA device unguarded."""
    import mmengine.dist.utils as dist_utils
    function = dist_utils._init_dist_pytorch
    if getattr(function, '_olor_cpu', False):
        return False
    source = inspect.getsource(function)
    return ('torch.cuda.set_device' in source
            and 'is_cuda_available' not in source
            and 'cuda.is_available' not in source)


def apply() -> bool:
    """Let ``init_dist('pytorch')`` start CPU processes (gloo). Idempotent.

    Wraps ``mmengine.dist.utils._init_dist_pytorch``: without any
    accelerator it initialises the process group from torchrun's
    environment with ``gloo`` (``nccl`` needs CUDA; the request is logged
    and replaced) and no ``set_device``; otherwise MMEngine's function runs.
    """
    if not has_bug():
        return False
    import mmengine.dist.utils as dist_utils
    original = dist_utils._init_dist_pytorch

    @functools.wraps(original)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if not _no_accelerator():
            return original(backend, init_backend=init_backend, **kwargs)
        if init_backend not in ('torch', 'deepspeed'):
            raise RuntimeError(
                f'init_backend={init_backend!r} (ColossalAI) trains on GPUs '
                "only; on the CPU use MMEngine's Runner, or FlexibleRunner "
                'with DDPStrategy, FSDPStrategy or DeepSpeedStrategy.')
        if backend != 'gloo':
            from mmengine.logging import print_log
            print_log(
                f'No GPU: distributed backend {backend!r} replaced by '
                "'gloo' (set env_cfg.dist_cfg.backend='gloo' to "
                'silence this).',
                logger='current')
            backend = 'gloo'
        if init_backend == 'deepspeed':  # DeepSpeed's CPU accelerator
            import deepspeed
            deepspeed.init_distributed(dist_backend=backend, **kwargs)
        else:
            torch.distributed.init_process_group(backend=backend, **kwargs)

    _init_dist_pytorch._olor_cpu = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch
    return True


def cpu_ddp_model_wrapper_cfg(cfg) -> None:
    """For a distributed launch without GPU: DDP with ``device_ids=None``.

    MMEngine's Runner (and FlexibleRunner's ``DDPStrategy``) passes
    ``device_ids=[LOCAL_RANK]`` to DistributedDataParallel, which CPU
    modules refuse; a value in ``cfg.model_wrapper_cfg`` (the strategy's
    ``model_wrapper``) wins over it. Other keys of an existing one are kept;
    the defaults are MMEngine's (``MMDistributedDataParallel``,
    ``broadcast_buffers=False``, ``find_unused_parameters`` from the
    config). Does nothing with a GPU or without a launcher.
    """
    if cfg.get('launcher', 'none') == 'none' or not _no_accelerator():
        return
    strategy = cfg.get('strategy') or {}
    if cfg.get('runner_type') == 'FlexibleRunner' or strategy:
        if strategy.get('type') == 'DDPStrategy':
            wrapper = dict(strategy.get('model_wrapper') or {})
            wrapper['device_ids'] = None
            strategy['model_wrapper'] = wrapper
        return
    wrapper = dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.update(cfg.get('model_wrapper_cfg') or {})
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
