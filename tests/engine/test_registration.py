"""import olor_mm registers into MMEngine's root registries."""
import torch.nn as nn
from mmengine.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                               DefaultScope)
from toy import olor_wrapper_cfg

import olor_mm


def test_root_registries_hold_the_plugins():
    assert OPTIM_WRAPPERS.get('OLOROptimWrapper') is olor_mm.OLOROptimWrapper
    assert OPTIM_WRAPPERS.get(
        'AmpOLOROptimWrapper') is olor_mm.AmpOLOROptimWrapper
    assert OPTIM_WRAPPER_CONSTRUCTORS.get(
        'LayerwiseRollbackConstructor') is olor_mm.LayerwiseRollbackConstructor


def _model():
    m = nn.Module()
    m.backbone = nn.Linear(2, 2)
    m.head = nn.Linear(2, 1)
    return m


def test_found_from_mmdet_and_mmseg_scopes():
    from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS as DET_C
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as SEG_C
    for scope, registry in (('mmdet', DET_C), ('mmseg', SEG_C)):
        with DefaultScope.overwrite_default_scope(scope):
            cfg = olor_wrapper_cfg(dict(type='SGD', lr=0.1))
            constructor = registry.build(
                dict(
                    type=cfg.pop('constructor'),
                    optim_wrapper_cfg=cfg,
                    paramwise_cfg=cfg.pop('paramwise_cfg')))
            ow = constructor(_model())
        assert isinstance(ow, olor_mm.OLOROptimWrapper), scope


def test_olor_mm_registers_one_constructor_two_wrappers_and_one_hook():
    """Every class olor-mm puts in MMEngine's registries (issue 32): the
    former wrapper names are functions that name the current spelling."""
    import inspect

    from mmengine.registry import HOOKS

    mine = {
        registry.name:
        sorted(name for name, obj in registry.module_dict.items()
               if getattr(obj, '__module__', '').startswith('olor_mm')
               and inspect.isclass(obj))
        for registry in (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, HOOKS)
    }
    assert mine == {
        'optimizer wrapper constructor': ['LayerwiseRollbackConstructor'],
        'optim_wrapper': ['AmpOLOROptimWrapper', 'OLOROptimWrapper'],
        'hook': ['RollbackDriftHook'],
    }
    former = {
        name
        for name, obj in OPTIM_WRAPPERS.module_dict.items()
        if getattr(obj, '__module__', '').startswith('olor_mm')
        and not inspect.isclass(obj)
    }
    assert former == {
        'L2SPOptimWrapper', 'AmpL2SPOptimWrapper', 'EWCOptimWrapper',
        'AmpEWCOptimWrapper'
    }
