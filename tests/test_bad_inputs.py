"""Every bad input gets a clear error: the key, and the fix.

One table across the constructor, the wrappers, the plain-PyTorch API, the
drift hook and the command-line tools: each row is a call that must fail
with its exception type and a message that names the key and says what to
do instead.
"""
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from toy import TOY_LAYERS, ToyClassifier

import olor_mm
from olor_mm.cli import enable_amp


def _build(model=None, wrapper=None, **paramwise):
    paramwise.setdefault('layer_patterns', TOY_LAYERS)
    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.1),
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=paramwise)
    cfg.update(wrapper or {})
    return build_optim_wrapper(model or ToyClassifier(), cfg)


def _frozen():
    model = ToyClassifier()
    model.requires_grad_(False)
    return model


def _empty():
    model = nn.Module()
    model.backbone = nn.Module()
    return model


def _groups(**kwargs):
    return olor_mm.layerwise_rollback_groups(ToyClassifier(), **kwargs)


def _attach_twice():
    opt = torch.optim.SGD(_groups(rollback_max=0.1), lr=0.1)
    olor_mm.attach_rollback(opt)
    olor_mm.attach_rollback(opt)


def _bad_group():
    groups = _groups(rollback_max=0.1)
    groups[0]['rollback'] = 1.5
    olor_mm.attach_rollback(torch.optim.SGD(groups, lr=0.1))


def _meta():
    model = ToyClassifier().to('meta')
    opt = torch.optim.SGD(
        olor_mm.layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1)
    olor_mm.attach_rollback(opt).snapshot()


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


def _shell_contradicts():
    opt = torch.optim.SGD(_groups(rollback_max=0.1), lr=0.1)
    olor_mm.attach_rollback(opt, scale_with_lr=True)
    olor_mm.OLOROptimWrapper(opt, scale_with_lr=False)


def _drift_hook(interval):
    olor_mm.RollbackDriftHook(interval=interval)


def _amp(kind):
    enable_amp(
        Config(
            dict(
                optim_wrapper=dict(
                    type=kind, optimizer=dict(type='SGD', lr=0.1)))))


def _layout(name):
    from olor_mm.tools.upstream_layouts import write_layout
    write_layout(name, '/tmp/olor_bad_layout')


def _compat(value, monkeypatch):
    monkeypatch.setenv('OLOR_MM_COMPAT', value)
    from olor_mm import compat
    compat.enabled('checkpoint')


# (id, call, exception, the key, the fix)
CASES = [
    ('rollback_max out of range', lambda: _build(rollback_max=1.2), ValueError,
     r'rollback_max=1\.2', r'set it in \[0, 1\]'),
    ('rollback_max a string', lambda: _build(rollback_max='0.01'), ValueError,
     r"rollback_max='0\.01'", r'set it in \[0, 1\]'),
    ('rollback_min above rollback_max',
     lambda: _build(rollback_max=0.01, rollback_min=0.1), ValueError,
     r'rollback_min=0\.1 > rollback_max', r'swap them'),
    ('rollback_power negative', lambda: _build(rollback_power=-1), ValueError,
     r'rollback_power=-1', r'finite number >= 0'),
    ('rollback_power not a number', lambda: _build(rollback_power=None),
     ValueError, r'rollback_power=None', r'finite number >= 0'),
    ('unknown layer_unit', lambda: _build(layer_unit='stage'), ValueError,
     r"layer_unit='stage'", r"use 'block'"),
    ('misspelt key', lambda: _build(rollback_maximum=0.1), ValueError,
     r"'rollback_maximum'", r"did you mean 'rollback_max'"),
    ('reserved group key', lambda: _build(rollback=0.1), ValueError,
     r"\['rollback'\]", r'use rollback_max'),
    ('prefix matching nothing',
     lambda: _build(pretrained_prefixes=('encoder', )), ValueError,
     r"pretrained_prefixes entry 'encoder'", r"name the pretrained module"),
    ('overlapping prefixes',
     lambda: _build(pretrained_prefixes=('', 'backbone')), ValueError,
     r'pretrained_prefixes', r'list each pretrained module once'),
    ('prefixes of the wrong type', lambda: _build(pretrained_prefixes=5),
     ValueError, r'pretrained_prefixes=5', r"e\.g\. \('backbone',\)"),
    ('empty prefixes', lambda: _build(pretrained_prefixes=()), ValueError,
     r'pretrained_prefixes=\(\)', r"e\.g\. \('backbone',\)"),
    ('patterns leaving parameters unmatched',
     lambda: _build(layer_patterns=[r'^conv1\.']), ValueError,
     r'layer_patterns', r'add patterns for them'),
    ('pattern that does not compile',
     lambda: _build(layer_patterns=[r'^(conv']), ValueError,
     r'layer_patterns: pattern', r'does not compile'),
    ('non-float anchor_dtype', lambda: _build(anchor_dtype='int8'), ValueError,
     r"anchor_dtype='int8'", r"'bfloat16'"),
    ('scale_with_lr not a bool', lambda: _build(scale_with_lr='yes'),
     TypeError, r"scale_with_lr='yes'", r'True or False'),
    ('scale_with_lr in two places',
     lambda: _build(wrapper=dict(scale_with_lr=False), scale_with_lr=True),
     ValueError, r'optim_wrapper\.scale_with_lr=False and paramwise_cfg',
     r'one place'),
    ('merge_groups not a bool', lambda: _build(merge_groups='yes'), ValueError,
     r"merge_groups='yes'", r'True \(one group per'),
    ('unknown optimizer_impl', lambda: _build(optimizer_impl='cuda_graph'),
     ValueError, r"optimizer_impl='cuda_graph'", r'use one of'),
    ('decay_rate above 1', lambda: _build(decay_rate=1.5), ValueError,
     r'decay_rate=1\.5', r'number in \(0, 1\]'),
    ('unknown decay_type', lambda: _build(decay_type='block_wise'), ValueError,
     r"decay_type='block_wise'", r"use 'layer_wise'"),
    ('num_layers a string', lambda: _build(num_layers='12'), ValueError,
     r"num_layers='12'", r'whole number'),
    ('an OLOR key at the wrapper level',
     lambda: _build(wrapper=dict(rollback_max=0.1)), ValueError,
     r'optim_wrapper\.rollback_max', r'optim_wrapper\.paramwise_cfg\.'
     r'rollback_max'),
    ('paramwise for paramwise_cfg',
     lambda: _build(wrapper=dict(paramwise=dict(rollback_max=0.1))),
     ValueError, r'optim_wrapper\.paramwise ',
     r'optim_wrapper\.paramwise_cfg'),
    ('fused kernel and foreach both asked for', lambda: _build(
        wrapper=dict(optimizer=dict(type='SGD', lr=0.1, foreach=True)),
        optimizer_impl='fused'), ValueError, r"optimizer_impl='fused'",
     r'remove optimizer\.foreach'),
    ('a model on the meta device', _meta, ValueError, r'meta device',
     r'materialise the model'),
    ('tools/train.py: a missing config', lambda: _train_cli('nope.py'),
     SystemExit, r'config file nope\.py does not exist', r'working directory'),
    ('--resume: an empty last_checkpoint', lambda: _last_checkpoint(''),
     FileNotFoundError, r'last_checkpoint is empty', r'iter_3\.pth'),
    ('--resume: a dangling last_checkpoint',
     lambda: _last_checkpoint('{work}/iter_6.pth'), FileNotFoundError,
     r'iter_6\.pth, which does not exist', r'resume it with --resume .*'
     r'iter_3\.pth'),
    ('drift hook prefixes None',
     lambda: olor_mm.RollbackDriftHook(prefixes=None), ValueError,
     r'RollbackDriftHook\.prefixes=None', r"prefixes=\('backbone',\)"),
    ('every parameter frozen', lambda: _build(model=_frozen()), ValueError,
     r'requires_grad=False', r'Unfreeze'),
    ('model without parameters', lambda: _build(model=_empty()), ValueError,
     r"pretrained_prefixes entry 'backbone'", r'name the pretrained'),
    ('L2-SP alpha negative', lambda: _build(method='l2sp', alpha=-0.1),
     ValueError, r'paramwise_cfg\.alpha=-0\.1', r'alpha=0\.1'),
    ('a key of another method', lambda: _build(alpha=0.1), ValueError,
     r"alpha is a key of method=\['l2sp', 'ewc'\]",
     r'set paramwise_cfg\.method'),
    ('an unknown method', lambda: _build(method='l2-sp'), ValueError,
     r"paramwise_cfg\.method='l2-sp' is unknown", r"did you mean 'l2sp'"),
    ('L2-SP without the constructor', lambda: build_optim_wrapper(
        ToyClassifier(),
        dict(type='L2SPOptimWrapper', optimizer=dict(type='SGD', lr=0.1))),
     ValueError, r'pretrained', r"constructor='LayerwiseRollbackConstructor'"),
    ('CPU mixed precision in float16',
     lambda: _build(wrapper=dict(type='AmpOLOROptimWrapper', dtype='float16')),
     ValueError, r"optim_wrapper\.dtype='float16'", r"set dtype='bfloat16'"),
    ('wrapper key contradicting the attached rollback', _shell_contradicts,
     ValueError, r'optim_wrapper\.scale_with_lr=False',
     r'set it once, as optim_wrapper\.paramwise_cfg\.scale_with_lr'),
    ('plain API: rollback_max out of range', lambda: _groups(rollback_max=2.0),
     ValueError, r'rollback_max=2\.0', r'set it in \[0, 1\]'),
    ('plain API: pretrained_options setting rollback',
     lambda: _groups(pretrained_options=dict(rollback=0.5)), ValueError,
     r"pretrained_options has 'rollback'", r'use rollback_max'),
    ('plain API: every parameter frozen',
     lambda: olor_mm.layerwise_rollback_groups(_frozen()), ValueError,
     r'requires_grad=False', r'no trainable parameter'),
    ('plain API: attached twice', _attach_twice, RuntimeError,
     r'already carries', r'\.remove\(\)'),
    ('plain API: a group rollback outside [0, 1]', _bad_group, ValueError,
     r'rollback=1\.5', r'rollback_max / rollback_min in \[0, 1\]'),
    ('drift hook interval 0', lambda: _drift_hook(0), ValueError,
     r'RollbackDriftHook\.interval=0', r'positive integer'),
    ('drift hook interval a string', lambda: _drift_hook('5'), ValueError,
     r"RollbackDriftHook\.interval='5'", r'positive integer'),
    ('--amp on an unknown wrapper', lambda: _amp('MyWrapper'), ValueError,
     r"optim_wrapper\.type='MyWrapper'", r'set the AMP wrapper type'),
    ('unknown data layout', lambda: _layout('voc'), ValueError,
     r"--layout 'voc'", r'use one of'),
]


@pytest.mark.parametrize(
    'call, error, key, fix', [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_names_the_key_and_the_fix(call, error, key, fix):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert __import__('re').search(key, message), message
    assert __import__('re').search(fix, message), message


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


def test_unknown_compat_switch_names_the_variable(monkeypatch):
    with pytest.raises(
            ValueError, match=r"OLOR_MM_COMPAT='x'.*use all, "
            'none'):
        _compat('x', monkeypatch)


def test_there_are_at_least_25_rows():
    assert len(CASES) >= 25


@pytest.mark.parametrize('tool', ['print_layers', 'smoke_train'])
def test_check_tools_say_a_misspelt_olor_key_in_one_line(tool, tmp_path):
    """An upstream config (by its mmdet:: name) given the constructor and a
    misspelt OLOR key: one line naming the key and the right one, before
    any model is built or data generated."""
    import importlib
    main = importlib.import_module(f'olor_mm.tools.{tool}').main
    argv = [
        'mmdet::rtmdet/rtmdet-ins_s_8xb32-300e_coco.py', '--cfg-options',
        'optim_wrapper.constructor=LayerwiseRollbackConstructor',
        'optim_wrapper.paramwise_cfg.rollback_mx=0.1'
    ]
    if tool == 'smoke_train':
        argv += ['--work-dir', str(tmp_path / 'smoke')]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    said = str(stop.value)
    assert said.startswith(f'{tool}: error: ') and '\n' not in said
    assert "'rollback_mx' (did you mean 'rollback_max'?)" in said
    assert not (tmp_path / 'smoke' / 'data').exists()
