"""olor-mm: OLOR (One step Learning, One step Review) for PyTorch and MMEngine.

Always, with nothing but torch (the rollback lives on the torch optimizer):

- :func:`layerwise_rollback_groups`: param groups carrying OLOR's
  layer-wise ``rollback`` (Eq. 8/9) for any torch optimizer;
- :func:`attach_rollback`: the rollback toward ``theta0`` after every step,
  with ``theta0`` in the optimizer's state dict;
- :func:`register_layer_scheme`: how a backbone class of yours is numbered
  by depth (:mod:`olor_mm.layers.numbering` has the other sources).

With MMEngine installed, importing the package registers, in MMEngine's
root registries (so that mmdet- and mmseg-scoped configs find them):

- ``LayerwiseRollbackConstructor`` in ``OPTIM_WRAPPER_CONSTRUCTORS`` (it
  attaches OLOR's rollback, or the L2-SP / EWC penalty, under any wrapper
  type);
- ``OLOROptimWrapper`` and ``AmpOLOROptimWrapper`` in ``OPTIM_WRAPPERS``
  (and, for one release, the former ``L2SPOptimWrapper`` ... names, which
  the constructor rewrites: :mod:`olor_mm.engine.deprecations`);
- ``RollbackDriftHook`` (per-stage drift in the logs) in ``HOOKS``;
- ``olor_mm::`` config bases (MMEngine's table of packages with configs);

and applies the compatibility fixes of :mod:`olor_mm.compat` whose probe
finds the bug in the installed stack. Nothing else of torch, MMEngine,
MMDetection or MMSegmentation changes. Use it from a config with::

    custom_imports = dict(imports=['olor_mm'], allow_failed_imports=False)
"""
import torch

from .core.attach import RollbackHandle, attach_rollback, find_rollback
from .core.param_groups import layerwise_rollback_groups
from .layers.layer_schemes import register_layer_scheme
from .version import __version__, check_versions, installed_versions

__all__ = [
    'layerwise_rollback_groups', 'attach_rollback', 'find_rollback',
    'RollbackHandle', 'register_layer_scheme', '__version__'
]


def _mmengine_installed() -> bool:
    try:
        import mmengine  # noqa: F401
    except ModuleNotFoundError as err:
        if err.name != 'mmengine':
            raise  # MMEngine is there but broken: say so
        return False
    return True


if _mmengine_installed():
    # one error naming every unsupported version (as mmdet checks mmcv)
    import mmengine
    check_versions(
        dict(
            torch=torch.__version__,
            mmengine=mmengine.__version__,
            **installed_versions('mmcv')))
    from .compat import apply_compat_fixes
    from .compat.config_bases import register_config_package
    from .engine.constructors import LayerwiseRollbackConstructor
    from .engine.deprecations import register_deprecated_types
    from .engine.hooks import RollbackDriftHook
    from .engine.log import forward_to_mmengine
    from .engine.optim_wrappers import AmpOLOROptimWrapper, OLOROptimWrapper

    forward_to_mmengine()
    apply_compat_fixes()
    register_config_package()
    register_deprecated_types()
    __all__ += [
        'LayerwiseRollbackConstructor', 'OLOROptimWrapper',
        'AmpOLOROptimWrapper', 'RollbackDriftHook'
    ]
else:
    check_versions(dict(torch=torch.__version__))
