"""olor-mm: OLOR (One step Learning, One step Review) for PyTorch and MMEngine.

Always, with nothing but torch (the rollback lives on the torch optimizer):

- :func:`layerwise_rollback_groups`: param groups carrying OLOR's
  layer-wise ``rollback`` (Eq. 8/9) for any torch optimizer;
- :func:`attach_rollback`: the rollback toward ``theta0`` after every step,
  with ``theta0`` in the optimizer's state dict;
- :func:`register_layer_scheme`: how a backbone class of yours is numbered
  by depth (:mod:`olor_mm.layers.numbering` has the other sources).

With MMEngine installed, importing the package also registers, in MMEngine's
root registries (so that mmdet- and mmseg-scoped configs find them):

- ``LayerwiseRollbackConstructor`` in ``OPTIM_WRAPPER_CONSTRUCTORS`` (it
  attaches the rollback, under any wrapper type);
- ``OLOROptimWrapper``, ``AmpOLOROptimWrapper``, ``L2SPOptimWrapper``,
  ``AmpL2SPOptimWrapper``, ``EWCOptimWrapper`` and ``AmpEWCOptimWrapper``
  in ``OPTIM_WRAPPERS``;
- ``RollbackDriftHook`` (per-stage drift in the logs) in ``HOOKS``;

and applies the narrow compatibility fixes of :mod:`olor_mm.compat` to that
stack. Use it from a config with::

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
    from .engine.ewc import AmpEWCOptimWrapper, EWCOptimWrapper
    from .engine.fsdp import shard_theta0_with_fsdp
    from .engine.hooks import RollbackDriftHook
    from .engine.l2sp import AmpL2SPOptimWrapper, L2SPOptimWrapper
    from .engine.load_check import warn_when_nothing_is_loaded
    from .engine.log import forward_to_mmengine
    from .engine.optim_wrappers import AmpOLOROptimWrapper, OLOROptimWrapper

    forward_to_mmengine()
    apply_compat_fixes()
    register_config_package()
    shard_theta0_with_fsdp()
    warn_when_nothing_is_loaded()
    __all__ += [
        'LayerwiseRollbackConstructor', 'OLOROptimWrapper',
        'AmpOLOROptimWrapper', 'L2SPOptimWrapper', 'AmpL2SPOptimWrapper',
        'EWCOptimWrapper', 'AmpEWCOptimWrapper', 'RollbackDriftHook'
    ]
else:
    check_versions(dict(torch=torch.__version__))
