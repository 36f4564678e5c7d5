"""The third probe's cases (issue 34): each failed on the main of
2026-12-07 and holds now, checked against Eq. 6 computed here.

    theta_t = theta_hat_t + lam * (theta0 - theta_hat_t)
"""
import logging

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from toy import ToyClassifier, olor_wrapper_cfg, runner_cfg

import olor_mm  # noqa: F401
from olor_mm import attach_rollback, layerwise_rollback_groups


def _one_group(model, lam):
    return [dict(params=list(model.parameters()), rollback=lam)]


def _half_spacing(dtype):
    """Half the spacing of ``dtype`` relative to a value's magnitude."""
    return torch.finfo(dtype).eps / 2


# ------------------------------------------- 1. bf16 / fp16 weights
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_weights_follow_the_closed_form(dtype):
    """Weights 1 % to 20 % from theta0 = 1, lam 0.01, 100 steps whose own
    update rounds away: Eq. 6 gives theta0 + d * 0.99 ** 100; each weight
    is within half its spacing of it (before: the pull rounded away until
    the drift reached about 20 % in bf16, 5 % in fp16, e.g. 1.1016 stayed
    1.1016 where Eq. 6 gives 1.0372)."""
    theta0 = torch.ones(184, dtype=dtype)
    w = nn.Parameter(theta0.clone())
    opt = torch.optim.SGD([dict(params=[w], rollback=0.01)], lr=1e-8)
    handle = attach_rollback(opt, scale_with_lr=False)
    handle.snapshot()  # theta0 = 1
    with torch.no_grad():
        w.copy_(1 + torch.linspace(0.01, 0.2, 184))
    start = w.detach().double()
    for _ in range(100):
        w.grad = torch.ones_like(w)
        opt.step()
    expected = 1 + (start - 1) * 0.99**100
    err = (w.detach().double() - expected).abs()
    assert bool((err <= _half_spacing(dtype) * expected + 1e-6).all()), \
        float(err.max())
    assert bool((w.detach().double() < start).all())  # every one moved


def _mlp(dtype):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16,
                                                                4)).to(dtype)


def _batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 8, generator=g), torch.randn(16, 4, generator=g))
            for _ in range(n)]


def _train(model, opt, batches, dtype):
    for x, y in batches:
        opt.zero_grad()
        ((model(x.to(dtype)) - y.to(dtype))**2).mean().backward()
        opt.step()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_training_follows_eq6_for_200_steps(dtype):
    """A bf16 (fp16) MLP under SGD with momentum and the rollback, 200
    steps. The reference, in float64: Eq. 6 applied to the exact weight
    ``v`` with the optimizer's own update ``u_t = theta_hat_t - theta_{t-1}``
    (what the step did to the stored weights), ``v_t = (v_{t-1} + u_t) +
    lam * (theta0 - v_{t-1} - u_t)``. The stored weight stays within half
    its spacing of ``v`` at every step; before, the pull was lost wherever
    it was smaller than half a spacing (57 of 184 elements never moved)."""
    model = _mlp(dtype)
    lam = 0.01
    opt = torch.optim.SGD(_one_group(model, lam), lr=0.05, momentum=0.9)
    params = list(model.parameters())
    hat = {}
    # registered before the rollback's: sees theta_hat_t
    opt.register_step_post_hook(lambda o, a, k: hat.update(
        {id(p): p.detach().double().clone()
         for p in params}))
    handle = attach_rollback(opt, scale_with_lr=False)
    theta0 = [p.detach().double().clone() for p in params]
    exact = [p.detach().double().clone() for p in params]
    worst = 0.0
    for x, y in _batches(200):
        before = [p.detach().double().clone() for p in params]
        _train(model, opt, [(x, y)], dtype)
        for p, v, t0, b in zip(params, exact, theta0, before):
            v += hat[id(p)] - b  # the optimizer's update
            v += lam * (t0 - v)  # Eq. 6
            err = (p.detach().double() - v).abs()
            tol = _half_spacing(dtype) * v.abs() * 1.01 + 1e-7
            worst = max(worst, float((err / tol).max()))
    assert worst <= 1.0, worst
    assert handle.theta0 is not None


def test_bf16_resume_continues_bit_for_bit():
    """The rounding carried is saved with theta0: stopped after 30 steps
    and resumed in a new optimizer, 30 more give the uninterrupted run's
    weights exactly."""
    batches = _batches(60, seed=3)

    def build():
        model = _mlp(torch.bfloat16)
        opt = torch.optim.SGD(_one_group(model, 0.01), lr=0.05, momentum=0.9)
        attach_rollback(opt, scale_with_lr=False)
        return model, opt

    model, opt = build()
    _train(model, opt, batches, torch.bfloat16)
    model2, opt2 = build()
    _train(model2, opt2, batches[:30], torch.bfloat16)
    saved = dict(model=model2.state_dict(), optim=opt2.state_dict())
    assert any('olor_rollback.residual' in g for g in saved['optim']
               ['param_groups']), 'the rounding carried is saved'
    model3, opt3 = build()
    model3.load_state_dict(saved['model'])
    opt3.load_state_dict(saved['optim'])
    _train(model3, opt3, batches[30:], torch.bfloat16)
    for p, q in zip(model.parameters(), model3.parameters()):
        assert torch.equal(p, q)


# ------------------------------------------- 2. what the step did not move
def _toy_sgd(momentum=0.0, lam=0.3):
    torch.manual_seed(0)
    model = ToyClassifier()
    opt = torch.optim.SGD(
        layerwise_rollback_groups(
            model, ('backbone', ), rollback_max=lam, rollback_min=lam),
        lr=0.1,
        momentum=momentum)
    return model, opt


def test_a_layer_frozen_mid_run_with_zeroed_grads_stays_put():
    """``zero_grad(set_to_none=False)``, the stem frozen after 2 steps: its
    gradient is a zero tensor, torch's SGD leaves it as it is, so must the
    rollback (before: moved by 1.7e-2 over 5 steps)."""
    model, opt = _toy_sgd()
    attach_rollback(opt)
    stem = model.backbone.conv1.weight
    x = torch.rand(4, 3, 8, 8)
    for step in range(7):
        if step == 2:
            stem.requires_grad_(False)
            frozen = stem.detach().clone()
        opt.zero_grad(set_to_none=False)
        model(x).sum().backward()
        opt.step()
    assert torch.equal(stem.detach(), frozen)


def test_a_zero_gradient_that_momentum_moves_rolls_back_where_it_moved():
    """With momentum torch's SGD still moves a tensor whose gradient is
    zero now: that tensor is updated, and Eq. 6 applies to it."""
    model, opt = _toy_sgd(momentum=0.9)
    stem = model.backbone.conv1.weight
    hat = {}
    opt.register_step_post_hook(
        lambda o, a, k: hat.update(w=stem.detach().clone()))
    attach_rollback(opt)
    theta0 = stem.detach().clone()
    x = torch.rand(4, 3, 8, 8)
    for step in range(4):
        if step == 2:
            stem.requires_grad_(False)
        opt.zero_grad(set_to_none=False)
        model(x).sum().backward()
        opt.step()
    assert not torch.equal(hat['w'], theta0)
    torch.testing.assert_close(stem.detach(),
                               hat['w'] + 0.3 * (theta0 - hat['w']))


def test_rows_a_sparse_step_leaves_are_not_rolled_back():
    """SparseAdam updates the rows a batch used; the others stay where they
    are, and so they do under the rollback (before: pulled toward theta0
    at every step); the used rows follow Eq. 6."""
    torch.manual_seed(0)
    emb = nn.Embedding(10, 3, sparse=True)
    opt = torch.optim.SparseAdam([dict(params=[emb.weight], rollback=0.2)],
                                 lr=0.1)
    hat = {}
    opt.register_step_post_hook(
        lambda o, a, k: hat.update(w=emb.weight.detach().clone()))
    attach_rollback(opt, scale_with_lr=False)
    theta0 = emb.weight.detach().clone()
    for rows in ([list(range(10))] + [[1, 2, 2]] * 3):
        opt.zero_grad()
        emb(torch.tensor(rows)).sum().backward()
        opt.step()
        if len(rows) == 10:
            after_first = emb.weight.detach().clone()
    w = emb.weight.detach()
    untouched = [0, 3, 4, 5, 6, 7, 8, 9]
    assert not torch.equal(after_first[untouched], theta0[untouched])
    assert torch.equal(w[untouched], after_first[untouched])
    used = hat['w'][[1, 2]]
    torch.testing.assert_close(w[[1, 2]], used + 0.2 * (theta0[[1, 2]] - used))


# ------------------------------------------- 3. optimizer state shapes
@pytest.mark.parametrize('impl', ['auto', 'foreach', 'torch_default'])
@pytest.mark.parametrize('saved,now', [(5, 3), (3, 5)])
def test_a_state_of_another_shape_is_refused_on_load(impl, saved, now):
    """``num_classes`` edited between the run and its resume: torch's fused
    AdamW (what ``auto`` picks on a CPU) trained on with the old moments
    (5 -> 3) or aborted with ``malloc_consolidate()`` (3 -> 5); refused
    now for every kernel, before torch loads anything, naming the
    parameter and both shapes."""

    def build(classes):
        torch.manual_seed(0)
        model = ToyClassifier(num_classes=classes)
        ow = build_optim_wrapper(
            model,
            olor_wrapper_cfg(dict(type='AdamW', lr=1e-3), optimizer_impl=impl))
        return model, ow

    model, ow = build(saved)
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    ow.step()
    state = ow.state_dict()
    _, ow2 = build(now)
    with pytest.raises(ValueError) as err:
        ow2.load_state_dict(state)
    text = str(err.value)
    assert 'head.weight' in text and f'({now}, 4)' in text and \
        f'({saved}, 4)' in text and 'load_from' in text, text


# ------------------------------------------- 4. another constructor
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


# ------------------------------------------- 5. frozen stages
def test_the_shipped_mask_rcnn_gives_rollback_max_to_its_first_trained_layer(
        mm_log):
    """The README's Mask R-CNN R50 freezes the stem and stage 1
    (``frozen_stages=1``): they take no depth, so layer2.0 gets
    ``rollback_max=0.01`` (before: 0.0075) and the table lists them as
    frozen."""
    from olor_mm.tools import config_input
    cfg = config_input.load('configs/mmdet/mask-rcnn_r50_fpn_olor_1x_coco.py')
    backbone = dict(cfg.model.backbone, init_cfg=None)
    assert backbone['frozen_stages'] == 1

    class Detector(nn.Module):

        def __init__(self):
            super().__init__()
            with DefaultScope.overwrite_default_scope('mmdet'):
                self.backbone = MMDET_MODELS.build(backbone)
            self.neck = nn.Linear(2, 2)

    model = Detector()
    ow = config_input.rollback_constructor(cfg)(model)
    lam = {
        id(p): g['rollback']
        for g in ow.optimizer.param_groups for p in g['params']
    }
    b = model.backbone
    assert lam[id(b.layer2[0].conv1.weight)] == 0.01
    assert lam[id(b.layer4[2].conv3.weight)] == 0.0
    assert max(lam[id(p)] for p in b.parameters() if p.requires_grad) == 0.01
    table = '\n'.join(r.getMessage() for r in mm_log)
    assert 'frozen' in table and '4 frozen layers take no depth' in table


# ------------------------------------------- 6. messages
def test_an_lr_raised_by_hand_in_plain_pytorch_is_said_plainly(mm_log):
    """``SGD(groups, lr=0)`` with the lr raised by hand: the warning says
    what happens and the plain-PyTorch fix, not MMEngine's config keys."""
    model, _ = _toy_sgd()
    opt = torch.optim.SGD(
        layerwise_rollback_groups(model, ('backbone', ), rollback_max=0.1),
        lr=0.0)
    attach_rollback(opt)
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    opt.step()
    for g in opt.param_groups:
        g['lr'] = 0.1
    opt.step()
    text = ' '.join(r.getMessage() for r in mm_log
                    if r.levelno >= logging.WARNING)
    assert 'had lr 0 when theta0 was taken' in text
    assert 'requires_grad_(False)' in text
    for foreign in ('custom_keys', 'eta_min', 'frozen_stages'):
        assert foreign not in text


def test_rollback_power_0_says_rollback_min_is_unused(mm_log):
    layerwise_rollback_groups(
        ToyClassifier(), ('backbone', ),
        rollback_max=0.01,
        rollback_min=0.005,
        rollback_power=0)
    text = ' '.join(r.getMessage() for r in mm_log)
    assert 'rollback_min=0.005 is not used' in text
    assert 'rollback_power > 0' in text


def test_fsdp_without_use_orig_params_is_named(tmp_path):
    """One process, gloo: FSDP without ``use_orig_params`` flattens the
    parameters; the constructor names the wrapper's argument (before:
    "'backbone' holds no parameter")."""
    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        model = FSDP(ToyClassifier(), use_orig_params=False, device_id='cpu')
        with pytest.raises(ValueError) as err:
            build_optim_wrapper(model, olor_wrapper_cfg())
    finally:
        dist.destroy_process_group()
    assert 'use_orig_params=True' in str(err.value)


def test_an_fsdp_resume_at_another_world_size_is_named():
    """torch's reason (``Local world size at save time was 2``) came last,
    after "damaged or incomplete (a run killed while saving it?)"."""
    from olor_mm.compat.checkpoint import damaged
    err = damaged(
        'epoch_1.pth',
        RuntimeError('Local world size at save time was 2, but at load '
                     'time was 1'))
    text = str(err)
    assert 'damaged' not in text
    assert 'world size 2' in text and 'world size 1' in text
    assert 'same number of processes' in text
