"""Loading MMEngine's checkpoints on torch >= 2.6, still weights-only.

The bug: torch 2.6 made ``weights_only=True`` the default of
``torch.load``; MMEngine's local loader (``load_from_local``, up to 0.10.7)
calls ``torch.load(filename, map_location=...)``, and the checkpoints MMEngine
writes hold more than tensors (the message hub's ``HistoryBuffer`` with numpy
arrays and scalars), so every ``resume`` and ``load_from`` of them fails with
``Unsupported global: ...HistoryBuffer``.

The fix keeps ``weights_only=True`` and allow-lists exactly what MMEngine
writes, during MMEngine's own loads only (``torch.serialization.safe_globals``,
not a process-wide change): ``HistoryBuffer``, numpy's array / scalar / dtype
reconstructors, torch's ``ShardedTensor`` types (the per-rank checkpoints
of MMEngine's FSDPStrategy), and ``getattr`` restricted to the two
attributes those pickle by reference (``HistoryBuffer``'s statistics
methods, ``ShardedTensor.ProcessGroupState``). A checkpoint that needs anything
else is refused with the global's name and how to allow it.
"""
import inspect
import os.path as osp
import pickle
import re

import torch

#: how a checkpoint needing more is told to allow it
ALLOW_HINT = (
    'If you trust the file, allow the global before training, e.g. in a '
    'module listed in custom_imports: torch.serialization.add_safe_globals'
    '([{name}]).')


def _torch_loads_weights_only_by_default() -> bool:
    """torch >= 2.6: ``torch.load`` defaults to ``weights_only=True``."""
    param = inspect.signature(torch.load).parameters.get('weights_only')
    if param is None:  # torch < 1.13
        return False
    version = tuple(int(x) for x in re.findall(r'\d+', torch.__version__)[:2])
    return param.default is None and version >= (2, 6)


def has_bug() -> bool:
    """MMEngine's local loader cannot read MMEngine's own checkpoints."""
    from mmengine.runner import checkpoint
    source = inspect.getsource(checkpoint.load_from_local)
    return (_torch_loads_weights_only_by_default()
            and 'weights_only' not in source)


def _restricted_getattr(obj, name: str):
    """``getattr`` for unpickling, on two known classes only.

    ``HistoryBuffer``'s statistics methods are pickled as
    ``getattr(HistoryBuffer, 'mean')`` ..., and ``ShardedTensor``'s state as
    ``getattr(ShardedTensor, 'ProcessGroupState')``; any other getattr is
    refused.
    """
    from mmengine.logging import HistoryBuffer
    allowed = obj is HistoryBuffer and not name.startswith('_')
    if not allowed and name == 'ProcessGroupState':
        sharded = _sharded_tensor_globals()
        allowed = bool(sharded) and obj is sharded[1]
    if not allowed:
        raise pickle.UnpicklingError(
            f'getattr({obj!r}, {name!r}) is not allowed: olor-mm allows '
            'getattr only on mmengine HistoryBuffer (and ShardedTensor) '
            'while loading an MMEngine checkpoint.')
    return getattr(obj, name)


def _sharded_tensor_globals() -> list:
    """torch's own types in the ``local`` checkpoints of MMEngine's
    FSDPStrategy (each rank's ``ShardedTensor`` slices)."""
    try:
        from torch.distributed._shard.metadata import ShardMetadata
        from torch.distributed._shard.sharded_tensor.api import ShardedTensor
        from torch.distributed._shard.sharded_tensor.metadata import (
            MEM_FORMAT_ENCODING, ShardedTensorMetadata, TensorProperties)
        from torch.distributed._shard.sharded_tensor.shard import Shard
        from torch.distributed._shard.sharding_spec import ChunkShardingSpec
        from torch.distributed.remote_device import _remote_device
    except ImportError:  # torch built without distributed
        return []
    return [
        ShardMetadata, ShardedTensor, MEM_FORMAT_ENCODING,
        ShardedTensorMetadata, TensorProperties, Shard, ChunkShardingSpec,
        _remote_device, ShardedTensor.ProcessGroupState
    ]


def mmengine_safe_globals() -> list:
    """What MMEngine writes into its checkpoints besides tensors."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:  # numpy >= 2
        from numpy._core import multiarray
        numpy_core = 'numpy._core.multiarray'
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
        numpy_core = 'numpy.core.multiarray'
    return [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        (multiarray._reconstruct, f'{numpy_core}._reconstruct'),
        (multiarray.scalar, f'{numpy_core}.scalar'),
        (_restricted_getattr, 'builtins.getattr'),
    ] + [type(np.dtype(c))
         for c in '?bhilqBHILQefdgFDG'] + _sharded_tensor_globals()


def load_from_local_safe(filename: str, map_location=None):
    """MMEngine's ``load_from_local``, weights-only with its globals allowed.

    Raises:
        FileNotFoundError: if ``filename`` is not a file.
        pickle.UnpicklingError: naming the file, the global it needs and how
            to allow it, for a checkpoint holding more than MMEngine writes.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with torch.serialization.safe_globals(mmengine_safe_globals()):
        try:
            return torch.load(
                filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            found = re.search(r'GLOBAL ([\w.]+)', str(err))
            if found is None and 'Weights only load failed' in str(err):
                refused = re.search(r'WeightsUnpickler error:\s*(.*)',
                                    str(err))
                raise pickle.UnpicklingError(
                    f'{filename} was refused by the weights-only loader: '
                    f'{refused.group(1) if refused else err}') from err
            if found is None:
                raise damaged(filename, err) from err
            name = found.group(1)
            raise pickle.UnpicklingError(
                f'{filename} holds the global {name}, which loading with '
                'weights_only=True does not allow (olor-mm allows only what '
                'MMEngine writes into its checkpoints). ' +
                ALLOW_HINT.format(name=name)) from err
        except (RuntimeError, EOFError, ValueError, OSError) as err:
            raise damaged(filename, err) from err


def damaged(filename: str, err: Exception) -> RuntimeError:
    """The error for a checkpoint that cannot be read, with the way out.

    A run killed while it saved leaves a truncated file; MMEngine writes
    ``last_checkpoint`` only after a complete save, so ``--resume`` (auto)
    picks the last complete one. The message names it. A sharded
    checkpoint (FSDP's local state dict) read by another number of
    processes is named as that, not as damaged.
    """
    sharded = re.search(
        r'(?:Local|Global) (rank|world size) at save time was (\d+), '
        r'but at load time was (\d+)', str(err))
    if sharded:
        what, saved, now = sharded.groups()
        return RuntimeError(
            f'{filename} holds sharded tensors (FSDP\'s local state dict, '
            'in which theta0 is sharded like the parameters) written at '
            f'{what} {saved}, and this process has {what} {now} (torch: '
            f'{err}). A sharded checkpoint resumes only on the number of '
            'processes that saved it: launch the resume with the same '
            'number of processes (--launcher pytorch, nproc_per_node).')
    folder = osp.dirname(osp.abspath(filename))
    last = osp.join(folder, 'last_checkpoint')
    hint = ''
    if osp.isfile(last):
        with open(last) as f:
            complete = f.read().strip()
        if osp.abspath(complete) != osp.abspath(filename):
            hint = (f' The last complete checkpoint MMEngine recorded is '
                    f'{complete}: resume from it (--resume without a path '
                    'takes it).')
    return RuntimeError(
        f'{filename} cannot be read: it is damaged or incomplete (a run '
        f'killed while saving it?): {type(err).__name__}: {err}.' + hint)


def load_from_local(filename, map_location):
    """MMEngine's ``load_from_local`` (same name and signature, so that
    what looks the loader up by name still finds it), weights-only with
    MMEngine's globals allowed: :func:`load_from_local_safe`."""
    return load_from_local_safe(filename, map_location)


def apply() -> bool:
    """Register the safe loader for local paths if MMEngine needs it."""
    if not has_bug():
        return False
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    return True
