"""--amp's config edit (olor_mm.cli.enable_amp)."""
import pytest
import torch
from mmengine.config import Config

from olor_mm.cli import enable_amp


def _cfg(kind):
    return Config(
        dict(
            optim_wrapper=dict(type=kind, optimizer=dict(type='SGD', lr=0.1))))


def test_the_olor_wrapper_becomes_its_amp_twin():
    cfg = _cfg('OLOROptimWrapper')
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOLOROptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'


@pytest.mark.parametrize('kind, method', [('L2SPOptimWrapper', 'l2sp'),
                                          ('EWCOptimWrapper', 'ewc')])
def test_a_former_penalty_wrapper_is_rewritten_then_made_amp(kind, method):
    """The deprecated type is first written the current way (the method
    in paramwise_cfg), then the wrapper becomes mixed precision: MMEngine's
    AmpOptimWrapper on a GPU, AmpOLOROptimWrapper (bfloat16) without."""
    cfg = _cfg(kind)
    cfg.optim_wrapper.constructor = 'LayerwiseRollbackConstructor'
    cfg.optim_wrapper.alpha = 0.3
    enable_amp(cfg)
    gpu = torch.cuda.is_available()
    assert cfg.optim_wrapper.type == ('AmpOptimWrapper'
                                      if gpu else 'AmpOLOROptimWrapper')
    assert cfg.optim_wrapper.paramwise_cfg.method == method
    assert cfg.optim_wrapper.paramwise_cfg.alpha == 0.3
    assert 'alpha' not in cfg.optim_wrapper


def test_amp_wrapper_is_left_alone():
    cfg = _cfg('AmpOLOROptimWrapper')
    cfg.optim_wrapper.loss_scale = 512.
    enable_amp(cfg)
    assert cfg.optim_wrapper.loss_scale == 512.


def test_unknown_wrapper_is_refused():
    with pytest.raises(ValueError, match='no mixed-precision twin'):
        enable_amp(_cfg('MyWrapper'))


def test_plain_wrapper_without_gpu_is_refused():
    import torch
    if torch.cuda.is_available():
        cfg = _cfg('OptimWrapper')
        enable_amp(cfg)
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    else:
        with pytest.raises(RuntimeError, match='--amp without a GPU'):
            enable_amp(_cfg('OptimWrapper'))


def test_olor_config_with_plain_wrapper_gets_an_amp_twin():
    """The documented spelling (OptimWrapper + the constructor) under
    --amp: MMEngine's AmpOptimWrapper on a GPU, the bfloat16 CPU twin
    without one (AmpOptimWrapper cannot be built there)."""
    import torch
    cfg = _cfg('OptimWrapper')
    cfg.optim_wrapper.constructor = 'LayerwiseRollbackConstructor'
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == ('AmpOptimWrapper'
                                      if torch.cuda.is_available() else
                                      'AmpOLOROptimWrapper')
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
