"""Merged parameter groups, the optimizer kernel, layer-wise lr decay."""
import copy

import pytest
import torch
from mmengine.optim import CosineAnnealingLR, LinearLR, build_optim_wrapper
from toy import TOY_LAYERS, ToyClassifier

import olor_mm
from olor_mm.core.kernels import choose_impl


def _cfg(optimizer=None, **paramwise):
    paramwise.setdefault('rollback_max', 0.2)
    paramwise.setdefault('layer_patterns', TOY_LAYERS)
    paramwise.setdefault('custom_keys', {
        'backbone.layer2': dict(lr_mult=0.5),
        'head': dict(decay_mult=0.)
    })
    paramwise.setdefault('norm_decay_mult', 0.)
    return dict(
        type='OptimWrapper',
        optimizer=optimizer or dict(type='AdamW', lr=1e-2, weight_decay=0.05),
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=paramwise)


def _train(model, ow, steps=8, seed=1):
    schedulers = [
        LinearLR(ow, start_factor=0.1, by_epoch=False, begin=0, end=3),
        CosineAnnealingLR(ow, T_max=steps, by_epoch=False, begin=0, end=steps)
    ]
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(4, 3, 8, 8, generator=g)
        y = torch.randint(0, 3, (4, ), generator=g)
        ow.update_params(model(x, [*y], mode='loss')['loss'])
        for s in schedulers:
            s.step()


def _options(ow, model):
    """{parameter name: its group's options}."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(p)]: {k: v
                       for k, v in g.items() if k != 'params'}
        for g in ow.optimizer.param_groups for p in g['params']
    }


@pytest.mark.parametrize('impl', ['torch_default', 'foreach', 'fused'])
def test_merged_and_per_parameter_layouts_are_bit_identical(impl):
    torch.manual_seed(0)
    start = ToyClassifier(blocks=(1, 2))
    models, wrappers = {}, {}
    for merge in (True, False):
        model = copy.deepcopy(start)
        ow = build_optim_wrapper(model,
                                 _cfg(merge_groups=merge, optimizer_impl=impl))
        _train(model, ow)
        models[merge], wrappers[merge] = model, ow
    assert len(wrappers[True].optimizer.param_groups) < len(
        wrappers[False].optimizer.param_groups) == len(
            list(start.parameters()))
    for (n, p), q in zip(models[True].named_parameters(),
                         models[False].parameters()):
        assert torch.equal(p, q), n
    # the rollback ran in both (same lam_eff after the same schedule)
    handle = olor_mm.find_rollback(wrappers[True].optimizer)
    assert handle.active and handle.theta0 is not None


def test_every_group_option_is_preserved_for_every_parameter():
    model = ToyClassifier(blocks=(1, 2))
    per_param = _options(
        build_optim_wrapper(model, _cfg(merge_groups=False)), model)
    merged_ow = build_optim_wrapper(model, _cfg())
    merged = _options(merged_ow, model)
    assert per_param == merged
    # the options differ where they should: lr_mult, decay, rollback
    assert merged['backbone.layer2.0.0.weight']['lr'] == pytest.approx(5e-3)
    assert merged['head.weight']['weight_decay'] == 0.0
    assert merged['backbone.bn1.weight']['weight_decay'] == 0.0
    assert merged['backbone.conv1.weight']['rollback'] == pytest.approx(0.2)
    # one group per distinct set of options, in order of first appearance
    keys = [tuple(sorted(o.items())) for o in merged.values()]
    assert len(merged_ow.optimizer.param_groups) == len(set(keys))


@pytest.mark.parametrize('optimizer, exact',
                         [('SGD', True), ('Adam', True), ('AdamW', True),
                          ('NAdam', False), ('RAdam', False)])
def test_P4_G25_foreach_against_the_loop_as_usage_md_says(optimizer, exact):
    """usage.md: on the CPU foreach SGD, Adam and AdamW are bit-identical
    to the single-tensor loop; foreach NAdam and RAdam differ from it by
    under 1e-7 after 8 steps, in torch alone as under olor-mm (the fourth
    probe's P4-G25 found the sentence claiming bit-identity for all)."""
    torch.manual_seed(0)
    start = ToyClassifier(blocks=(1, 2))
    out = {}
    for rollback in (0.2, 0.0):  # under olor-mm; torch alone (lam 0)
        for impl in ('torch_default', 'foreach'):
            model = copy.deepcopy(start)
            ow = build_optim_wrapper(
                model,
                _cfg(
                    dict(type=optimizer, lr=1e-2, weight_decay=0.05),
                    rollback_max=rollback,
                    rollback_min=0.0,
                    optimizer_impl=impl))
            _train(model, ow)
            out[rollback, impl] = [p.detach() for p in model.parameters()]
    for rollback in (0.2, 0.0):
        pairs = list(
            zip(out[rollback, 'torch_default'], out[rollback, 'foreach']))
        gap = max((a - b).abs().max().item() for a, b in pairs)
        if exact:
            assert gap == 0.0, (optimizer, rollback, gap)
        else:
            assert 0.0 < gap < 1e-7, (optimizer, rollback, gap)


@pytest.mark.parametrize('kind, impl', [('fused', 'fused'),
                                        ('foreach', 'foreach')])
def test_fast_kernels_match_the_single_tensor_loop_within_rounding(kind, impl):
    torch.manual_seed(0)
    start = ToyClassifier(blocks=(1, 2))
    out = {}
    for name in ('torch_default', impl):
        model = copy.deepcopy(start)
        ow = build_optim_wrapper(model, _cfg(optimizer_impl=name))
        assert bool(ow.optimizer.defaults.get(kind)) == (name == impl)
        _train(model, ow)
        out[name] = list(model.parameters())
    for a, b in zip(out['torch_default'], out[impl]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    if impl == 'fused':
        # close, not equal: the fused kernel orders its operations
        # differently (on the CPU foreach runs the loop's own per-tensor
        # kernels and comes out equal)
        assert not all(
            torch.equal(a, b) for a, b in zip(out['torch_default'], out[impl]))


def test_auto_picks_fused_else_foreach_and_respects_the_config(mm_log):
    groups = [dict(params=[torch.zeros(2, requires_grad=True)])]
    assert choose_impl(torch.optim.AdamW, groups)[0] == 'fused'
    assert choose_impl(torch.optim.SGD, groups)[0] == 'fused'
    assert choose_impl(torch.optim.RMSprop,
                       groups) == ('foreach', dict(foreach=True))
    # a fused / foreach in the optimizer's config wins over 'auto'
    assert choose_impl(torch.optim.AdamW, groups, 'auto',
                       dict(fused=False)) == ('torch_default', {})
    assert choose_impl(torch.optim.AdamW, groups, 'auto',
                       dict(foreach=True))[1] == {}
    with pytest.raises(ValueError, match="optimizer_impl='fused'.*RMSprop"):
        choose_impl(torch.optim.RMSprop, groups, 'fused')
    ow = build_optim_wrapper(ToyClassifier(), _cfg())
    assert ow.optimizer.defaults['fused'] is True
    assert any(
        'kernel: fused' in r.getMessage() and 'merged into' in r.getMessage()
        for r in mm_log)


@pytest.mark.parametrize('key, value', [('optimizer_impl', 'cuda_graph'),
                                        ('merge_groups', 'yes'),
                                        ('decay_rate', 1.5),
                                        ('decay_type', 'block_wise')])
def test_bad_build_keys_fail_at_build_naming_the_key(key, value):
    with pytest.raises(ValueError, match=f'paramwise_cfg.{key}'):
        build_optim_wrapper(ToyClassifier(), _cfg(**{key: value}))


@pytest.mark.parametrize('saved_merged', [True, False])
def test_resuming_the_other_layout_names_merge_groups(saved_merged):
    model = ToyClassifier()
    saved = build_optim_wrapper(model, _cfg(merge_groups=saved_merged))
    _train(model, saved, steps=1)
    state = saved.state_dict()
    other = build_optim_wrapper(model, _cfg(merge_groups=not saved_merged))
    with pytest.raises(
            ValueError, match=f'merge_groups={saved_merged} to '
            'resume it'):
        other.load_state_dict(state)
    same = build_optim_wrapper(model, _cfg(merge_groups=saved_merged))
    same.load_state_dict(state)  # the same layout resumes


def test_layer_wise_lr_decay_equals_mmsegs_on_beit():
    """mmseg's LearningRateDecayOptimizerConstructor numbers a BEiT as the
    rollback does (patch embedding 0, block j at j + 1, the final norm with
    the heads): the multipliers agree on every parameter."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
    with DefaultScope.overwrite_default_scope('mmseg'):
        backbone = MODELS.build(
            dict(
                type='BEiT',
                img_size=(64, 64),
                patch_size=16,
                embed_dims=32,
                num_layers=4,
                num_heads=2,
                mlp_ratio=2,
                out_indices=(3, ),
                qv_bias=True,
                init_values=0.1,
                final_norm=True))
    model = torch.nn.Module()
    model.backbone = backbone
    model.head = torch.nn.Linear(32, 3)
    optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.05)
    decay = dict(num_layers=4, decay_rate=0.9, decay_type='layer_wise')
    with DefaultScope.overwrite_default_scope('mmseg'):
        upstream = OPTIM_WRAPPER_CONSTRUCTORS.build(
            dict(
                type='LearningRateDecayOptimizerConstructor',
                optim_wrapper_cfg=dict(
                    type='OptimWrapper', optimizer=optimizer),
                paramwise_cfg=dict(decay)))(
                    model)
    ours = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            optimizer=optimizer,
            constructor='LayerwiseRollbackConstructor',
            paramwise_cfg=dict(decay, rollback_max=0.01)))
    lr = {}
    for tag, ow in (('upstream', upstream), ('ours', ours)):
        lr[tag] = _lrs(ow, model)
    assert lr['ours'].keys() == lr['upstream'].keys()
    for name in lr['ours']:
        assert lr['ours'][name] == pytest.approx(lr['upstream'][name]), name
    assert lr['ours']['backbone.cls_token'] == pytest.approx(1e-3 * 0.9**5)
    assert lr['ours']['backbone.layers.3.ln1.weight'] == pytest.approx(1e-3 *
                                                                       0.9)
    assert lr['ours']['head.weight'] == pytest.approx(1e-3)


def _lrs(ow, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(p)]: g['lr']
        for g in ow.optimizer.param_groups for p in g['params']
    }


def test_stage_wise_lr_decay_follows_the_stages():
    model = ToyClassifier(blocks=(1, 2))
    ow = build_optim_wrapper(
        model, _cfg(custom_keys={}, decay_rate=0.5, decay_type='stage_wise'))
    lr = _lrs(ow, model)
    # ToyBackbone's stages: stem (conv1, bn1), stage1 (layer1), stage2
    assert lr['backbone.conv1.weight'] == pytest.approx(1e-2 * 0.25)
    assert lr['backbone.layer1.0.0.weight'] == pytest.approx(1e-2 * 0.5)
    assert lr['backbone.layer2.1.0.weight'] == pytest.approx(1e-2)
    assert lr['head.weight'] == pytest.approx(1e-2)
