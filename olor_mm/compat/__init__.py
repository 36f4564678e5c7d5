"""Narrow fixes for the OpenMMLab stack on current PyTorch and setuptools.

Each fix lives in its own module with ``has_bug()``, which checks that the
installed versions have the bug, and ``apply()``, which patches only then
(and says whether it did):

- :mod:`.checkpoint`: MMEngine's checkpoints load on torch >= 2.6, still
  with ``weights_only=True`` (MMEngine's own classes allowed, nothing else);
- :mod:`.config_bases`: ``mmdet::`` / ``mmseg::`` bases resolve without
  ``pkg_resources`` (setuptools >= 81);
- :mod:`.dist`: ``init_dist`` and DDP (and DeepSpeed's launch) on a
  machine without GPU (gloo);
- :mod:`.fsdp_resume`: MMEngine's ``FSDPStrategy`` resumes on torch >= 2.1
  (it calls ``FSDP.optim_state_dict_to_load`` in torch 2.0's argument
  order);
- :mod:`.mmcv_ops`: mmcv's CPU ``nms`` / ``roi_align`` under bfloat16
  autocast (applied when a CPU mixed-precision wrapper is built).

``import olor_mm`` applies the first four where MMEngine is installed and
the probe finds the bug; each keeps the name and signature of what it
replaces. The
environment variable ``OLOR_MM_COMPAT`` chooses: unset (or ``all``) applies
every fix whose bug is found; ``0`` / ``off`` / ``none`` applies none; a
comma-separated list (``checkpoint,dist``) applies those only. Nothing is
ever written into site-packages. Each fix, its probe and the upstream
report are listed in docs/compatibility.md.
"""
import os

from . import checkpoint, config_bases, dist, fsdp_resume, mmcv_ops
from .checkpoint import load_from_local_safe, mmengine_safe_globals
from .dist import cpu_ddp_model_wrapper_cfg

__all__ = [
    'FIXES', 'APPLIED', 'enabled', 'apply_compat_fixes', 'apply_fix',
    'run_mmcv_ops_in_fp32_under_cpu_autocast', 'cpu_ddp_model_wrapper_cfg',
    'load_from_local_safe', 'mmengine_safe_globals'
]

#: every fix by name
FIXES = dict(
    checkpoint=checkpoint,
    config_bases=config_bases,
    dist=dist,
    fsdp_resume=fsdp_resume,
    mmcv_ops=mmcv_ops)
#: applied by ``import olor_mm`` (mmcv_ops: by CPU mixed precision)
AT_IMPORT = ('checkpoint', 'config_bases', 'dist', 'fsdp_resume')

#: the fixes applied in this process (their probe found the bug)
APPLIED = set()


def enabled(name: str) -> bool:
    """Whether ``OLOR_MM_COMPAT`` lets fix ``name`` apply.

    Raises:
        ValueError: for a name in ``OLOR_MM_COMPAT`` that is no fix.
    """
    value = os.environ.get('OLOR_MM_COMPAT', 'all').strip().lower()
    if value in ('', 'all', '1', 'on'):
        return True
    if value in ('0', 'off', 'none'):
        return False
    names = {n.strip() for n in value.split(',') if n.strip()}
    unknown = names - set(FIXES)
    if unknown:
        raise ValueError(
            f'OLOR_MM_COMPAT={value!r} names no fix {sorted(unknown)}; use '
            f'all, none, or a comma-separated list of {sorted(FIXES)}.')
    return name in names


def apply_fix(name: str) -> bool:
    """Apply fix ``name`` if enabled and its bug is there; True if done."""
    done = enabled(name) and FIXES[name].apply()
    if done:
        APPLIED.add(name)
    return done


def apply_compat_fixes() -> dict:
    """The fixes ``import olor_mm`` applies; ``{name: applied}``."""
    return {name: apply_fix(name) for name in AT_IMPORT}


def run_mmcv_ops_in_fp32_under_cpu_autocast() -> bool:
    """mmcv's CPU nms / roi_align in float32 under bfloat16 autocast."""
    return apply_fix('mmcv_ops')
