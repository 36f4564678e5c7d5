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
changes for float32 inputs or for CUDA tensors. It is applied when an olor-mm
mixed-precision wrapper is built on the CPU, not at import.

MMEngine 0.10.7's ``init_dist(launcher='pytorch')`` calls
``torch.cuda.set_device`` unconditionally and the runtimes of MMDetection /
MMSegmentation ask for the ``nccl`` backend, so ``tools/dist_train.sh`` on a
machine without GPU (CPU data-parallel with ``gloo``: CI, debugging) fails
before training. :func:`init_dist_pytorch_without_cuda` skips
``set_device`` and takes ``gloo`` when no accelerator exists; with CUDA
(or NPU/MLU/MUSA) MMEngine's own function runs unchanged. The Runner's DDP
wrapper also passes ``device_ids=[LOCAL_RANK]``, invalid for CPU modules:
:func:`cpu_ddp_model_wrapper_cfg` sets ``device_ids=None`` in the config
(the command-line tools apply it).

MMEngine 0.10.7's ``FSDPStrategy.load_optim_state_dict`` calls
``FSDP.optim_state_dict_to_load(state_dict, model, optimizer)``, the
argument order of torch < 2.1; current torch takes ``(model, optim,
optim_state_dict)``, so every FlexibleRunner + FSDP resume fails
(``unhashable type: 'dict'``). :func:`fsdp_sharded_theta0` calls it with
keywords and carries olor-mm's ``theta0`` through FSDP's optimizer-state
conversion: with ``use_orig_params=True`` and the (default) ``local``
state dict each rank's theta0 holds the rank's shard of every anchored
tensor, exactly like its parameters, and is saved in and restored from the
rank's own checkpoint file. The ``full`` state dict would gather the
optimizer state but not theta0, so building an olor-mm wrapper under it is
refused with a message instead of saving rank 0's shard as the whole.
"""
import functools
import inspect
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = [
    'load_from_local_trusted', 'run_mmcv_ops_in_fp32_under_cpu_autocast',
    'init_dist_pytorch_without_cuda', 'cpu_ddp_model_wrapper_cfg',
    'fsdp_sharded_theta0', 'apply_compat_fixes'
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


def _no_accelerator() -> bool:
    from mmengine.device import get_device
    return get_device() == 'cpu'


def init_dist_pytorch_without_cuda() -> None:
    """Let ``init_dist('pytorch')`` start CPU processes (gloo). Idempotent.

    Wraps ``mmengine.dist.utils._init_dist_pytorch``: without any
    accelerator it initialises the process group from torchrun's
    environment with ``gloo`` (``nccl`` needs CUDA; the request is logged
    and replaced) and no ``set_device``; otherwise MMEngine's function runs.
    """
    import mmengine.dist.utils as dist_utils
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_olor_cpu', False):
        return

    @functools.wraps(original)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if not _no_accelerator():
            return original(backend, init_backend=init_backend, **kwargs)
        if init_backend != 'torch':
            raise RuntimeError(
                f'init_backend={init_backend!r} needs a GPU; on the CPU use '
                "env_cfg.dist_cfg.backend='gloo' with the torch backend.")
        if backend != 'gloo':
            from mmengine.logging import print_log
            print_log(f'No GPU: distributed backend {backend!r} replaced by '
                      "'gloo' (set env_cfg.dist_cfg.backend='gloo' to "
                      'silence this).', logger='current')
            backend = 'gloo'
        torch.distributed.init_process_group(backend=backend, **kwargs)

    _init_dist_pytorch._olor_cpu = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch


def cpu_ddp_model_wrapper_cfg(cfg) -> None:
    """For a distributed launch without GPU: DDP with ``device_ids=None``.

    MMEngine's Runner passes ``device_ids=[LOCAL_RANK]`` to
    DistributedDataParallel, which CPU modules refuse; a value in
    ``cfg.model_wrapper_cfg`` wins over it. Other keys of an existing
    ``model_wrapper_cfg`` are kept; the defaults are MMEngine's
    (``MMDistributedDataParallel``, ``broadcast_buffers=False``,
    ``find_unused_parameters`` from the config). Does nothing with a GPU or
    without a launcher.
    """
    if cfg.get('launcher', 'none') == 'none' or not _no_accelerator():
        return
    wrapper = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                   find_unused_parameters=cfg.get('find_unused_parameters',
                                                  False))
    wrapper.update(cfg.get('model_wrapper_cfg') or {})
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def fsdp_sharded_theta0() -> None:
    """Fix FSDPStrategy's resume and save/restore sharded theta0. Idempotent.

    Patches ``mmengine._strategy.fsdp.FSDPStrategy``:
    ``build_optim_wrapper`` refuses an anchored optimizer (OLOR, L2-SP)
    under the ``full`` state dict, ``optim_state_dict``
    adds the anchor's entry (the rank's theta0 shards) to what
    ``FSDP.optim_state_dict`` returns, ``load_optim_state_dict`` calls
    ``FSDP.optim_state_dict_to_load`` with torch's keyword arguments and puts
    the entry back before the wrapper loads it, and ``resume`` refuses to go
    on without a restored theta0 (``resume_optimizer=False``), as the
    Runner's ``initialize_count_status`` does.
    """
    try:
        from mmengine._strategy.fsdp import FSDP, FSDPStrategy
    except ImportError:  # torch without FSDP
        return
    if getattr(FSDPStrategy.load_optim_state_dict, '_olor', False):
        return
    from .theta0 import LEGACY_STATE_KEY, find_anchor
    original_save = FSDPStrategy.optim_state_dict
    original_build = FSDPStrategy.build_optim_wrapper
    original_resume = FSDPStrategy.resume

    def build_optim_wrapper(self, optim_wrapper, model=None):
        built = original_build(self, optim_wrapper, model)
        anchor = find_anchor(built.optimizer)
        if (anchor is not None and anchor.active
                and self._is_full_state_dict()):
            raise NotImplementedError(
                f'The {anchor.owner} under FSDP keeps theta0 sharded '
                "like the parameters and saves it with the 'local' state "
                "dict only; set strategy.state_dict_cfg='local' (MMEngine's "
                'default).')
        return built

    def optim_state_dict(self) -> dict:
        state = original_save(self)
        anchor = find_anchor(self.optim_wrapper.optimizer)
        if anchor is not None and anchor.active:
            state[anchor.state_key] = anchor.state_entry()
        return state

    def load_optim_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        anchor = find_anchor(self.optim_wrapper.optimizer)
        entries = {
            key: state_dict.pop(key)
            for key in ({anchor.state_key} if anchor else set()) |
            {LEGACY_STATE_KEY} if key in state_dict
        }
        optim_state = FSDP.optim_state_dict_to_load(
            model=self.model, optim=self.optim_wrapper.optimizer,
            optim_state_dict=state_dict)
        optim_state.update(entries)
        self.optim_wrapper.load_state_dict(optim_state)

    def resume(self, filename, *args, **kwargs):
        checkpoint = original_resume(self, filename, *args, **kwargs)
        wrapper = getattr(self, 'optim_wrapper', None)
        anchor = None if wrapper is None else find_anchor(wrapper.optimizer)
        if anchor is not None:
            anchor.start_training(checkpoint['meta'].get('iter', 0),
                                  where=f' from {filename}')
        return checkpoint

    optim_state_dict._olor = load_optim_state_dict._olor = True
    FSDPStrategy.build_optim_wrapper = build_optim_wrapper
    FSDPStrategy.optim_state_dict = optim_state_dict
    FSDPStrategy.load_optim_state_dict = load_optim_state_dict
    FSDPStrategy.resume = resume


def apply_compat_fixes() -> None:
    """Apply every process-wide fix of this module; idempotent."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_trusted, force=True)
    init_dist_pytorch_without_cuda()
    fsdp_sharded_theta0()
