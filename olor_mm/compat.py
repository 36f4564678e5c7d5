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
"""
import inspect
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['load_trusted_local_checkpoint', 'apply_compat_fixes']

_TORCH_HAS_WEIGHTS_ONLY = 'weights_only' in inspect.signature(
    torch.load).parameters


def load_trusted_local_checkpoint(filename: str, map_location=None):
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


def apply_compat_fixes() -> None:
    """Apply every fix of this module; idempotent."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_trusted_local_checkpoint, force=True)
