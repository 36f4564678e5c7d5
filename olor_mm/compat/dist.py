"""Data-parallel training on a machine without GPU (gloo processes).

The bug: MMEngine's ``init_dist(launcher='pytorch')`` and
``init_dist(launcher='slurm')`` (up to 0.10.7) call
``torch.cuda.set_device`` whenever no NPU/MLU/MUSA is found, CUDA or not
(the Slurm one also divides by the GPU count when ``SLURM_LOCALID`` is
unset),
and the runtimes of MMDetection / MMSegmentation ask for the ``nccl``
backend, so ``tools/dist_train.sh`` and ``tools/slurm_train.sh`` on machines
without GPU (CPU data-parallel with ``gloo``: CI, debugging, CPU
clusters) fail before training, and so
does FlexibleRunner's ``DeepSpeedStrategy`` (``init_backend='deepspeed'``)
on DeepSpeed's CPU accelerator. The fix skips ``set_device`` and takes
``gloo`` when no accelerator exists (through ``deepspeed.init_distributed``
for DeepSpeed, as MMEngine does); with CUDA (or NPU/MLU/MUSA) MMEngine's
own function runs unchanged. Under Slurm the fix sets the environment
from Slurm's as MMEngine does (``MASTER_ADDR`` from ``scontrol`` unless
set, ``MASTER_PORT`` 29500 unless set, ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``) and starts the processes the same way. The Runner's DDP
wrapper also passes ``device_ids=[LOCAL_RANK]``, invalid for CPU modules:
:func:`cpu_ddp_model_wrapper_cfg` sets ``device_ids=None`` in the config
(the command-line tools apply it).
"""
import functools
import inspect
import os
import subprocess

import torch


def _no_accelerator() -> bool:
    from mmengine.device import get_device
    return get_device() == 'cpu'


def _sets_cuda_device(function) -> bool:
    """Whether ``function`` (not already fixed) sets a CUDA device
    unguarded."""
    if getattr(function, '_olor_cpu', False):
        return False
    source = inspect.getsource(function)
    return ('torch.cuda.set_device' in source
            and 'is_cuda_available' not in source
            and 'cuda.is_available' not in source)


def has_bug() -> bool:
    """MMEngine's ``_init_dist_pytorch`` or ``_init_dist_slurm`` sets a
    CUDA device unguarded."""
    import mmengine.dist.utils as dist_utils
    slurm = getattr(dist_utils, '_init_dist_slurm', None)
    return _sets_cuda_device(
        dist_utils._init_dist_pytorch) or (slurm is not None
                                           and _sets_cuda_device(slurm))


def _slurm_environment(port=None) -> None:
    """What MMEngine's ``_init_dist_slurm`` sets from Slurm's variables,
    for a machine without GPU (one process per task; ``SLURM_LOCALID``, or
    the task's rank where Slurm gives none)."""
    proc_id = int(os.environ['SLURM_PROCID'])
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', str(proc_id))
    os.environ['RANK'] = str(proc_id)


def apply() -> bool:
    """Let ``init_dist('pytorch')`` and ``init_dist('slurm')`` start CPU
    processes (gloo): each of MMEngine's two functions is wrapped where its
    probe finds the bug (:func:`_fix_pytorch`, :func:`_fix_slurm`).
    Idempotent."""
    if not has_bug():
        return False
    import mmengine.dist.utils as dist_utils
    if _sets_cuda_device(dist_utils._init_dist_pytorch):
        _fix_pytorch(dist_utils)
    slurm = getattr(dist_utils, '_init_dist_slurm', None)
    if slurm is not None and _sets_cuda_device(slurm):
        _fix_slurm(dist_utils)
    return True


def _fix_slurm(dist_utils) -> None:
    """Without any accelerator, ``init_dist('slurm')`` sets the environment
    from Slurm's (:func:`_slurm_environment`) and starts as the fixed
    ``init_dist('pytorch')`` does (gloo, no ``set_device``)."""
    original = dist_utils._init_dist_slurm

    @functools.wraps(original)
    def _init_dist_slurm(backend, port=None, init_backend='torch', **kwargs):
        if not _no_accelerator():
            return original(
                backend, port=port, init_backend=init_backend, **kwargs)
        _slurm_environment(port)
        return dist_utils._init_dist_pytorch(
            backend, init_backend=init_backend, **kwargs)

    _init_dist_slurm._olor_cpu = True
    dist_utils._init_dist_slurm = _init_dist_slurm


def _fix_pytorch(dist_utils) -> None:
    """Wraps ``mmengine.dist.utils._init_dist_pytorch``: without any
    accelerator it initialises the process group from torchrun's
    environment with ``gloo`` (``nccl`` needs CUDA; the request is logged
    and replaced) and no ``set_device``; otherwise MMEngine's function runs.
    """
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
