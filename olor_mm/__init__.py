"""olor-mm: OLOR (One step Learning, One step Review) for MMEngine.

Importing the package registers, in MMEngine's root registries (so that
mmdet- and mmseg-scoped configs find them):

- ``OLOROptimWrapper``, ``AmpOLOROptimWrapper`` and ``L2SPOptimWrapper``
  (the L2-SP baseline) in ``OPTIM_WRAPPERS``;
- ``LayerwiseRollbackConstructor`` in ``OPTIM_WRAPPER_CONSTRUCTORS``;
- ``RollbackDriftHook`` (per-stage drift in the logs) in ``HOOKS``;

and applies the narrow compatibility fixes of :mod:`olor_mm.compat`.
Use it from a config with::

    custom_imports = dict(imports=['olor_mm'], allow_failed_imports=False)
"""
from .compat import apply_compat_fixes
from .constructors import LayerwiseRollbackConstructor
from .hooks import RollbackDriftHook
from .l2sp import L2SPOptimWrapper
from .optim_wrappers import AmpOLOROptimWrapper, OLOROptimWrapper

__version__ = '0.1.0'

apply_compat_fixes()

__all__ = [
    'OLOROptimWrapper', 'AmpOLOROptimWrapper', 'L2SPOptimWrapper',
    'LayerwiseRollbackConstructor', 'RollbackDriftHook', '__version__'
]
