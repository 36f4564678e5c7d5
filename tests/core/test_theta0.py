"""One rule for theta0, owned by the core (olor_mm.core.theta0): a tensor's
theta0 is its value just before its first update, unless a loaded state
dict restored it. Under every wrapper and method olor-mm builds, in any
order a runner calls ``initialize_count_status`` and loads weights; a
resume (MMEngine's message hub says iteration > 0) without a restored
theta0 is refused; a deep copy of the wrapper is guarded. Never taken
from non-finite weights, from weights nothing was loaded into (said), or
beyond what anchor_dtype holds; lam switched on later is refused (misuse
probe A15, C3; fourth probe P4-F11)."""
import copy
import glob

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from toy import (TOY_LAYERS, ProbeNet, ToyClassifier, adamw_wrapper_cfg,
                 olor_wrapper_cfg, penalty_wrapper_cfg, pretrained_checkpoint,
                 probe_setup, probe_step, sgd_wrapper_cfg, toy_groups,
                 toy_runner, toy_step)

import olor_mm  # noqa: F401
from olor_mm import attach_rollback, layerwise_rollback_groups
from olor_mm.core.theta0 import find_anchor, saved_theta0

SGD = dict(type='SGD', lr=0.1)


def _cfg(kind):
    if kind == 'l2sp':
        return penalty_wrapper_cfg('l2sp', SGD, alpha=0.1, beta=0.01)
    return dict(olor_wrapper_cfg(SGD), type=kind)


KINDS = ['OptimWrapper', 'OLOROptimWrapper', 'AmpOLOROptimWrapper', 'l2sp']


def _step(model, ow):
    with ow.optim_context(model):
        loss = model(torch.ones(2, 3, 8, 8), mode='tensor').sum()
    ow.update_params(loss)


@pytest.mark.parametrize('kind', KINDS)
def test_theta0_is_the_weights_at_the_first_step(kind):
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg(kind))
    anchor = find_anchor(ow.optimizer)
    assert anchor.theta0 is None  # not at build time: weights load later
    # what a runner does in between, in either order: count status (the
    # Runner after load_or_resume, FlexibleRunner's strategies before it),
    # then init_weights / load_from
    ow.initialize_count_status(model, 0, 10)
    assert anchor.theta0 is None
    with torch.no_grad():
        model.backbone.conv1.weight.fill_(0.5)
    _step(model, ow)
    first = anchor.anchored_params.index(model.backbone.conv1.weight)
    assert torch.equal(anchor.theta0[first],
                       torch.full_like(anchor.theta0[first], 0.5))


@pytest.mark.parametrize('kind', KINDS)
def test_resuming_without_a_restored_theta0_is_refused(kind):
    """The runner's message hub holds iteration 4 at the first step (a
    resume whose checkpoint had no optimizer state): refused, and the
    message does not send the user to load_from (that anchors to the
    fine-tuned weights)."""
    MessageHub.get_instance('olor_resume_probe_' + kind)  # the run's hub
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg(kind))
    MessageHub.get_current_instance().update_info('iter', 4)
    with pytest.raises(RuntimeError) as err:
        _step(model, ow)
    assert 'resumed at iteration 4 but no theta0 was restored' in str(
        err.value)
    assert 'save_optimizer' in str(err.value)
    assert 'load_from' not in str(err.value)


def test_a_stale_message_hub_is_no_resume():
    """A hub left by an earlier run in the process (iteration 7) and not
    written since the wrapper was built is not this run's."""
    MessageHub.get_instance('olor_stale_probe').update_info('iter', 7)
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg('OptimWrapper'))
    _step(model, ow)
    assert find_anchor(ow.optimizer).theta0 is not None


def test_alias_built_without_the_constructor_takes_theta0_there_too():
    model = ToyClassifier()
    groups = olor_mm.layerwise_rollback_groups(model, rollback_max=0.2)
    ow = olor_mm.OLOROptimWrapper(torch.optim.SGD(groups, lr=0.1))
    assert ow.theta0 is None
    _step(model, ow)
    assert ow.theta0 is not None


def test_a_deep_copy_without_its_anchor_refuses_to_step():
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg('OptimWrapper'))
    _step(model, ow)
    twin = copy.deepcopy(ow)
    assert find_anchor(twin.optimizer) is None
    with pytest.raises(RuntimeError, match='no anchor is attached'):
        twin.optimizer.step()


def run_log(work_dir) -> str:
    """The text of the Runner's log file in ``work_dir``."""
    return open(glob.glob(str(work_dir / '*' / '*.log'))[0]).read()


def test_A15_rollback_switched_on_after_steps_without_is_refused():
    model = ToyClassifier()
    opt = torch.optim.SGD(toy_groups(model, rollback_max=0.), lr=0.1)
    attach_rollback(opt, scale_with_lr=False)
    toy_step(model, opt)
    for g in opt.param_groups:
        if g['layer_id'] is not None:
            g['rollback'] = 0.5
    with pytest.raises(
            RuntimeError, match='param group 0 rolls back.*when it first'):
        toy_step(model, opt, 1)


def test_A15b_lam_raised_on_a_group_without_theta0_is_refused():
    model = ToyClassifier()
    opt = torch.optim.SGD(toy_groups(model), lr=0.1)
    attach_rollback(opt, scale_with_lr=False)
    toy_step(model, opt)
    deep = next(g for g in opt.param_groups if g['layer_id'] == 3)
    assert deep['rollback'] == 0  # lam_n = rollback_min
    deep['rollback'] = 0.3
    with pytest.raises(RuntimeError, match=r'param group \d+ rolls back'):
        toy_step(model, opt, 1)


def test_C3_a_load_from_whose_keys_match_nothing_is_said(tmp_path):
    path, state = pretrained_checkpoint(tmp_path)
    backbone_only = tmp_path / 'backbone.pth'
    torch.save(
        dict(
            state_dict={
                k[len('backbone.'):]: v
                for k, v in state.items() if k.startswith('backbone.')
            }), backbone_only)
    runner = toy_runner(
        tmp_path / 'run',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        max_iters=1,
        load_from=str(backbone_only))
    runner.train()
    log = run_log(tmp_path / 'run')
    assert '(load_from) left 7 of the 7 pretrained tensors unchanged' in log
    assert "init_cfg=dict(type='Pretrained'" in log
    # the same run with the right checkpoint says nothing of the kind
    toy_runner(
        tmp_path / 'ok',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        max_iters=1,
        load_from=path).train()
    assert 'unchanged' not in run_log(tmp_path / 'ok')


def test_theta0_from_weights_nothing_was_loaded_into_is_said(tmp_path):
    """MMDetection's --resume in an empty work dir clears load_from: under
    any tool, a theta0 from weights no checkpoint reached is a warning
    naming the fix."""
    runner = toy_runner(tmp_path / 'run', sgd_wrapper_cfg(), resume=True)
    runner.train()
    log = open(glob.glob(str(tmp_path / 'run' / '*' / '*.log'))[0]).read()
    assert 'no checkpoint was loaded into the model' in log
    assert 'Set load_from=<the pretrained checkpoint>' in log
    assert '--resume clears load_from' in log
    # with load_from, nothing is said
    path, _ = pretrained_checkpoint(tmp_path)
    toy_runner(tmp_path / 'ok', sgd_wrapper_cfg(), load_from=path).train()
    log = open(glob.glob(str(tmp_path / 'ok' / '*' / '*.log'))[0]).read()
    assert 'no checkpoint was loaded' not in log


def test_a_layer_unfrozen_later_rolls_back_toward_its_pretrained_value():
    """The stem frozen while theta0 is taken (a warm-up that trains the
    head first), unfrozen later: it rolls back toward its pretrained
    value from its first update on."""
    torch.manual_seed(0)
    model = ToyClassifier()
    stem = model.backbone.conv1.weight
    opt = torch.optim.SGD(
        layerwise_rollback_groups(
            model,
            rollback_max=0.5,
            rollback_min=0.5,
            layer_patterns=TOY_LAYERS),
        lr=0.1)
    attach_rollback(opt)
    stem.requires_grad_(False)  # frozen at training start
    pretrained = stem.detach().clone()
    for step in range(4):
        if step == 2:
            stem.requires_grad_(True)
        opt.zero_grad()
        model(torch.rand(2, 3, 8, 8)).sum().backward()
        moved = stem.detach().clone()
        opt.step()
    hat = moved - 0.1 * stem.grad  # SGD, no momentum or decay
    torch.testing.assert_close(stem.detach(), hat + 0.5 * (pretrained - hat))


def test_theta0_is_never_taken_from_non_finite_weights():
    model = ToyClassifier()
    ow = build_optim_wrapper(model, adamw_wrapper_cfg())
    with torch.no_grad():
        model.backbone.conv1.weight[0, 0, 0, 0] = float('inf')
    with pytest.raises(ValueError, match='NaN or inf at their first update'):
        ow.optimizer.step()
    state = copy.deepcopy(ow.state_dict())
    assert state['olor_rollback']['taken'] is False
    assert saved_theta0(state) == {}


def test_P4_F11_a_theta0_that_overflows_anchor_dtype_is_refused():
    """A finite float32 weight of 1e5 with anchor_dtype='float16' (largest
    65504): theta0 was inf, the rollback pulled the weight there and the
    next step made every weight NaN, without a word."""
    torch.manual_seed(0)
    model = ProbeNet(gain=1e5)
    opt, _ = probe_setup(model, anchor_dtype='float16')
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError) as err:
        probe_step(model, opt)
    text = str(err.value)
    assert 'anchor_dtype=torch.float16' in text and '1e+05' in text
    assert "'bfloat16'" in text
    for n, p in model.named_parameters():  # refused before any update
        assert torch.equal(p, before[n]), n
    # a float32 theta0 resumed with anchor_dtype='float16': refused on load
    model = ProbeNet(gain=1e5)
    opt, _ = probe_setup(model)
    probe_step(model, opt)
    again, _ = probe_setup(ProbeNet(gain=1e5), anchor_dtype='float16')
    with pytest.raises(ValueError, match='do not fit anchor_dtype'):
        again.load_state_dict(opt.state_dict())
