"""olor-mm: OLOR (One step Learning, One step Review) for MMEngine.

Importing the package registers, in MMEngine's root registries (so that
mmdet- and mmseg-scoped configs find them):

- ``OLOROptimWrapper`` and ``AmpOLOROptimWrapper`` in ``OPTIM_WRAPPERS``;
- ``LayerwiseRollbackConstructor`` in ``OPTIM_WRAPPER_CONSTRUCTORS``;

and applies the narrow compatibility fixes of :mod:`olor_mm.compat`.
Use it from a config with::

    custom_imports = dict(imports=['olor_mm'], allow_failed_imports=False)
"""
from .compat import apply_compat_fixes
from .constructors import LayerwiseRollbackConstructor
from .optim_wrappers import AmpOLOROptimWrapper, OLOROptimWrapper

__version__ = '0.1.0'

apply_compat_fixes()

__all__ = [
    'OLOROptimWrapper', 'AmpOLOROptimWrapper', 'LayerwiseRollbackConstructor',
    '__version__'
]
