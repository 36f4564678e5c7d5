"""olor_mm/cli/common.py: --amp's config edit (enable_amp), and what the
command line gets wrong (a missing config, a broken last_checkpoint,
--cfg-options without '=', --launcher without torchrun): one line naming
the fix (``BAD_INPUTS``)."""
import pytest
import torch
from bad_input import bad_input_cases, check_bad_input
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


def _train_cli(*argv):
    from olor_mm.tools.train import main as train_main
    train_main(list(argv))


def _last_checkpoint(content):
    """A work dir holding iter_3.pth and a last_checkpoint of ``content``;
    returns what --resume makes of it."""
    import tempfile

    from olor_mm.cli import resume_options
    work = tempfile.mkdtemp()
    torch.save(dict(w=torch.ones(1)), f'{work}/iter_3.pth')
    with open(f'{work}/last_checkpoint', 'w') as f:
        f.write(content.format(work=work))
    resume_options(Config(dict(work_dir=work)), 'auto')


def _amp(kind):
    enable_amp(
        Config(
            dict(
                optim_wrapper=dict(
                    type=kind, optimizer=dict(type='SGD', lr=0.1)))))


# (id, call, exception, the key, the fix)
BAD_INPUTS = [
    ('tools/train.py: a missing config', lambda: _train_cli('nope.py'),
     SystemExit, r'config file nope\.py does not exist', r'working directory'),
    ('--resume: an empty last_checkpoint', lambda: _last_checkpoint(''),
     FileNotFoundError, r'last_checkpoint is empty', r'iter_3\.pth'),
    ('--resume: a dangling last_checkpoint',
     lambda: _last_checkpoint('{work}/iter_6.pth'), FileNotFoundError,
     r'iter_6\.pth, which does not exist', r'resume it with --resume .*'
     r'iter_3\.pth'),
    ('--amp on an unknown wrapper', lambda: _amp('MyWrapper'), ValueError,
     r"optim_wrapper\.type='MyWrapper'", r'set the AMP wrapper type'),
]


@bad_input_cases(BAD_INPUTS)
def test_bad_input_names_the_key_and_the_fix(call, error, key, fix):
    check_bad_input(call, error, key, fix)


@pytest.mark.parametrize(
    'argv, says', [
        (['--cfg-options', 'rollback_max'
          ], '--cfg-options: \'rollback_max\' has no "=": write key=value'),
        (['--launcher', 'pytorch'], 'needs the processes torchrun starts'),
    ],
    ids=['cfg-options without =', 'launcher pytorch without torchrun'])
def test_command_line_mistakes_get_one_line(argv, says, capsys, monkeypatch):
    """argparse's own error: the usage and one line naming the fix."""
    monkeypatch.delenv('RANK', raising=False)
    with pytest.raises(SystemExit) as info:
        _train_cli(__file__, *argv)
    assert info.value.code == 2
    assert says in capsys.readouterr().err
