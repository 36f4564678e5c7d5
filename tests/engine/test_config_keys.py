"""The config keys of OLOR's optim_wrapper block (olor_mm/engine/
config_keys.py, read by the constructor and the wrappers).

- OLOR keys under another constructor: refused by olor-mm's tools and by
  RollbackDriftHook before the first step (the third probe, issue 34).
- Every bad value or key of the block (out of range, mistyped, misspelt,
  at the wrong level, of another method, prefixes and patterns matching
  nothing, ...): an error naming the key and the fix (``BAD_INPUTS``).
"""
import pytest
import torch
import torch.nn as nn
from bad_input import bad_input_cases, check_bad_input
from mmengine.optim import build_optim_wrapper
from toy import (TOY_LAYERS, ToyClassifier, frozen_toy, plain_toy_groups,
                 runner_cfg)

import olor_mm  # noqa: F401


def test_olor_keys_under_another_constructor_are_refused(tmp_path):
    """MMDetection's ConvNeXt config keeps its
    LearningRateDecayOptimizerConstructor; OLOR keys merged into its
    paramwise_cfg built and never rolled back. Refused by olor-mm's tools
    and, under any tool, by the RollbackDriftHook the OLOR block adds."""
    from olor_mm.engine.config_keys import check_constructor
    from olor_mm.tools import config_input
    from olor_mm.tools.train import main

    # what mmdet's ConvNeXt configs set (they import mmpretrain, which is
    # not installed here), on a ResNet
    config = tmp_path / 'convnext_like.py'
    config.write_text(
        "_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n"
        'optim_wrapper = dict(\n'
        "    constructor='LearningRateDecayOptimizerConstructor',\n"
        "    paramwise_cfg=dict(decay_rate=0.95, decay_type='layer_wise',\n"
        '                       num_layers=6))\n')
    config = str(config)
    options = {'optim_wrapper.paramwise_cfg.rollback_max': 0.01}
    with pytest.raises(ValueError) as err:
        config_input.load(config, options)
    text = str(err.value)
    assert "'LearningRateDecayOptimizerConstructor'" in text
    assert "constructor='LayerwiseRollbackConstructor'" in text
    assert 'decay_rate' in text  # the upstream keys it reads too
    with pytest.raises(SystemExit) as err:
        main([
            config, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options',
            'optim_wrapper.paramwise_cfg.rollback_max=0.01'
        ])
    assert 'LayerwiseRollbackConstructor' in str(err.value)
    # olor-mm's own constructor, and a config without OLOR keys: fine
    check_constructor(
        dict(
            constructor='LayerwiseRollbackConstructor',
            paramwise_cfg=dict(rollback_max=0.01, decay_rate=0.9)))
    check_constructor(
        dict(
            constructor='LearningRateDecayOptimizerConstructor',
            paramwise_cfg=dict(decay_rate=0.9)))


def test_the_drift_hook_refuses_olor_keys_under_another_constructor(tmp_path):
    from mmengine.runner import Runner
    cfg = runner_cfg(
        tmp_path,
        dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.1),
            paramwise_cfg=dict(rollback_max=0.01)),  # MMEngine's default
        custom_hooks=[dict(type='RollbackDriftHook')])
    runner = Runner.from_cfg(cfg)
    before = {
        n: p.detach().clone()
        for n, p in runner.model.named_parameters()
    }
    with pytest.raises(ValueError, match='DefaultOptimWrapperConstructor'):
        runner.train()
    for n, p in runner.model.named_parameters():
        assert torch.equal(p, before[n]), 'refused before the first step'


def _build(model=None, wrapper=None, **paramwise):
    paramwise.setdefault('layer_patterns', TOY_LAYERS)
    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.1),
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=paramwise)
    cfg.update(wrapper or {})
    return build_optim_wrapper(model or ToyClassifier(), cfg)


def _empty():
    model = nn.Module()
    model.backbone = nn.Module()
    return model


def _shell_contradicts():
    opt = torch.optim.SGD(plain_toy_groups(rollback_max=0.1), lr=0.1)
    olor_mm.attach_rollback(opt, scale_with_lr=True)
    olor_mm.OLOROptimWrapper(opt, scale_with_lr=False)


# (id, call, exception, the key, the fix)
BAD_INPUTS = [
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
    ('every parameter frozen', lambda: _build(model=frozen_toy()), ValueError,
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
]


@bad_input_cases(BAD_INPUTS)
def test_bad_input_names_the_key_and_the_fix(call, error, key, fix):
    check_bad_input(call, error, key, fix)
