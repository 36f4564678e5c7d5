"""One resume check, owned by the anchor (issue 25): on ``load_state_dict``
the anchor's pre-hook refuses a state dict written with another set-up
(which tensors, how numbered) or another param-group layout, naming the
key, for the plain-PyTorch API (``attach_rollback(opt, setup=groups.setup)``)
as for MMEngine's constructor and the penalty wrappers; edited
hyper-parameters are the checkpoint's, as torch restores group values.
Checkpoints of another model, another optimizer, kernel or anchor dtype,
state tensors of another shape (third probe), a group of another size
(P4-E12)."""
import copy
import glob
import logging
import os.path as osp

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from toy import (ProbeNet, ToyClassifier, adamw_checkpoints, adamw_wrapper_cfg,
                 olor_wrapper_cfg, penalty_wrapper_cfg, pretrained_checkpoint,
                 probe_setup, probe_step, resumed_runner, sgd_wrapper_cfg,
                 toy_runner)

import olor_mm  # noqa: F401
from olor_mm import attach_rollback, layerwise_rollback_groups
from olor_mm.core.theta0 import find_anchor, saved_theta0

OLOR = dict(pretrained_prefixes=('backbone', ), rollback_max=0.2)


def _step(model, opt):
    opt.zero_grad()
    model.backbone(torch.ones(1, 3, 8, 8)).sum().backward()
    opt.step()


def _plain(model, **kwargs):
    groups = layerwise_rollback_groups(model, **dict(OLOR, **kwargs))
    opt = torch.optim.SGD(groups, lr=0.1)
    return opt, attach_rollback(opt, setup=groups.setup)


def _saved_plain(**kwargs):
    model = ToyClassifier()
    opt, _ = _plain(model, **kwargs)
    _step(model, opt)
    return model, opt.state_dict()


@pytest.mark.parametrize('key, value, saved', [
    ('layer_unit', 'param', "layer_unit='block'"),
    ('pretrained_prefixes', ('backbone.layer1', 'backbone.layer2'),
     "pretrained_prefixes=('backbone',)"),
    ('exclude_prefixes', ('backbone.conv1', ), 'exclude_prefixes=None'),
])
def test_plain_api_refuses_a_state_of_another_set_up(key, value, saved):
    model, state = _saved_plain()
    kwargs = {'exclude' if key == 'exclude_prefixes' else key: value}
    opt, _ = _plain(model, **kwargs)
    with pytest.raises(ValueError) as err:
        opt.load_state_dict(state)
    # the set-up is named before anything else about the state differs
    assert f'written with {saved}' in str(err.value)
    assert 'numbered differently' in str(err.value)
    assert 'load_from=<ckpt> and resume=False' in str(err.value)


def test_plain_api_without_setup_still_checks_theta0():
    """No setup given: the set-up is not compared (as before), but theta0
    still must cover the anchored tensors."""
    model, state = _saved_plain()
    groups = layerwise_rollback_groups(model, layer_unit='param', **OLOR)
    opt = torch.optim.SGD(groups, lr=0.1)
    attach_rollback(opt)
    with pytest.raises(
            ValueError,
            match='param groups.*the model, the '
            'pretrained prefixes, the param-group options'):
        opt.load_state_dict(state)


def test_plain_api_resume_applies_the_checkpoints_rollback(caplog):
    """rollback_max edited since the checkpoint: torch restores every
    group's ``rollback`` (lam_i) and the handle says so, as under MMEngine."""
    model, state = _saved_plain()
    opt, handle = _plain(model, rollback_max=0.05)
    with caplog.at_level(logging.WARNING, logger='olor_mm'):
        opt.load_state_dict(state)
    assert "the checkpoint's OLOR hyper-parameters apply" in caplog.text
    assert 'rollback_max=0.2' in caplog.text
    assert opt.param_groups[0]['rollback'] == pytest.approx(0.2)
    assert handle.config['rollback_max'] == 0.2


def test_plain_api_same_set_up_resumes():
    model, state = _saved_plain()
    opt, handle = _plain(model)
    opt.load_state_dict(state)
    saved = saved_theta0(state)
    for k, t in zip(sorted(saved), handle.theta0):
        assert torch.equal(t, saved[k])


def _l2sp(model, merge_groups=True, layer_unit='block'):
    cfg = penalty_wrapper_cfg(
        'L2SPOptimWrapper', dict(type='SGD', lr=0.1), alpha=0.1, beta=0.01)
    cfg['paramwise_cfg'].update(
        merge_groups=merge_groups, layer_unit=layer_unit)
    return build_optim_wrapper(model, cfg)


@pytest.mark.parametrize('saved_merged', [True, False])
def test_penalty_wrapper_resume_names_merge_groups(saved_merged):
    """L2-SP's own anchor checks the layout the constructor's set-up says
    (the guard used to be the constructor's alone)."""
    model = ToyClassifier()
    saved = _l2sp(model, merge_groups=saved_merged)
    saved.initialize_count_status(model, 0, 10)
    state = saved.state_dict()
    assert state['l2sp_anchor']['config']['merge_groups'] is saved_merged
    other = _l2sp(model, merge_groups=not saved_merged)
    with pytest.raises(
            ValueError, match=f'merge_groups={saved_merged} to resume it'):
        other.load_state_dict(state)
    _l2sp(model, merge_groups=saved_merged).load_state_dict(state)


def test_penalty_wrapper_resume_refuses_another_numbering():
    model = ToyClassifier()
    saved = _l2sp(model)
    saved.initialize_count_status(model, 0, 10)
    with pytest.raises(ValueError, match="L2-SP anchor.*layer_unit='block'"):
        _l2sp(model, layer_unit='param').load_state_dict(saved.state_dict())


# ------------------------------------------- the resume probe of issue 32
def test_g_a_state_saved_with_another_scale_with_lr_says_it_applies(caplog):
    """attach_rollback(..., scale_with_lr=False) loading a state saved with
    True: the checkpoint's applies (as every group value does), and one
    warning says so (before, silently)."""
    model, state = _saved_plain()  # scale_with_lr=True
    groups = layerwise_rollback_groups(model, **OLOR)
    opt = torch.optim.SGD(groups, lr=0.1)
    handle = attach_rollback(opt, scale_with_lr=False, setup=groups.setup)
    with caplog.at_level(logging.WARNING, logger='olor_mm'):
        opt.load_state_dict(state)
    assert handle.scale_with_lr is True
    assert 'scale_with_lr=True' in caplog.text
    assert 'scale_with_lr=False' in caplog.text


def test_h_groups_rebuilt_with_rollback_max_0_get_the_checkpoints_theta0(
        caplog):
    """Groups built with rollback_max=0 load a state written with 0.2:
    torch restores lam 0.2, and theta0 comes back with it (before, theta0
    was taken at the next step from the fine-tuned weights)."""
    model, state = _saved_plain()
    saved = saved_theta0(state)
    opt, handle = _plain(model, rollback_max=0.0)
    assert not handle.active
    with caplog.at_level(logging.WARNING, logger='olor_mm'):
        opt.load_state_dict(state)
    assert opt.param_groups[0]['rollback'] == pytest.approx(0.2)
    assert len(handle.theta0) == len(saved)
    for k, t in zip(sorted(saved), handle.theta0):
        assert torch.equal(t, saved[k])
    fine_tuned = {id(p): p.detach().clone() for p in handle.anchored_params}
    _step(model, opt)  # rolls back toward the restored theta0
    for p, t in zip(handle.anchored_params, handle.theta0):
        assert not torch.equal(t, fine_tuned[id(p)])
    assert 'rollback_max=0.2' in caplog.text


def _toy_run(tmp_path, name, iters, **kw):
    from toy import TOY_LAYERS, olor_wrapper_cfg, toy_runner
    wrapper = olor_wrapper_cfg(
        dict(type='SGD', lr=0.1),
        layer_patterns=TOY_LAYERS,
        **kw.pop('paramwise', {}))
    runner = toy_runner(tmp_path / name, wrapper, max_iters=iters, **kw)
    runner.train()
    return runner


def test_a_resume_with_rollback_min_edited_names_the_key(
        tmp_path, toy_pretrained, caplog):
    """rollback_min edited: the checkpoint's lam (and theta0) apply and the
    warning names rollback_min (before: "the model ... changed")."""
    path, _ = toy_pretrained
    _toy_run(tmp_path, 'run', 3, load_from=path)
    with caplog.at_level(logging.WARNING):
        _toy_run(
            tmp_path, 'run', 6, resume=True, paramwise=dict(rollback_min=0.05))
    log = _run_log(tmp_path / 'run')
    assert 'rollback_min=0.0' in log and 'rollback_min=0.05' in log
    assert "the checkpoint's OLOR hyper-parameters apply" in log


def test_b_a_resume_with_rollback_max_0_restores_the_checkpoints(
        tmp_path, toy_pretrained):
    """rollback_max=0 on resume: not 'the checkpoint lacks olor_rollback'
    (it has it): its lam and theta0 apply, with the warning."""
    path, pretrained = toy_pretrained
    _toy_run(tmp_path, 'run', 3, load_from=path)
    runner = _toy_run(
        tmp_path, 'run', 6, resume=True, paramwise=dict(rollback_max=0.0))
    anchor = find_anchor(runner.optim_wrapper.optimizer)
    names = {id(p): n for n, p in runner.model.named_parameters()}
    for p, t in zip(anchor.anchored_params, anchor.theta0):
        assert torch.equal(t, pretrained[names[id(p)]])
    log = _run_log(tmp_path / 'run')
    assert 'rollback_max=0.2' in log and 'rollback_max=0.0' in log


def _run_log(work_dir) -> str:
    import glob
    import os.path as osp
    logs = sorted(glob.glob(str(work_dir / '*' / '*.log')), key=osp.getmtime)
    return open(logs[-1]).read()


def test_c_save_optimizer_false_warns_and_its_resume_is_refused(
        tmp_path, toy_pretrained):
    """Checkpoints without the optimizer state: the run says at its start
    that it cannot be resumed; the resume is refused without sending the
    user to load_from (which would anchor to the fine-tuned weights)."""
    path, _ = toy_pretrained
    hooks = dict(
        checkpoint=dict(
            type='CheckpointHook',
            interval=3,
            by_epoch=False,
            save_optimizer=False))
    _toy_run(
        tmp_path,
        'run',
        3,
        load_from=path,
        default_hooks=hooks,
        custom_hooks=[dict(type='RollbackDriftHook')])
    log = _run_log(tmp_path / 'run')
    assert 'save_optimizer=False' in log and 'will be refused' in log
    with pytest.raises(RuntimeError) as err:
        _toy_run(tmp_path, 'run', 6, resume=True, default_hooks=hooks)
    assert 'resumed at iteration 3 but no theta0 was restored' in str(
        err.value)
    assert 'save_optimizer=True' in str(err.value)
    assert 'load_from' not in str(err.value)


def test_d_e_f_tools_resume_checks(tmp_path, toy_pretrained):
    """olor-mm's tools/train.py --resume: a published (weights-only) file is
    refused naming load_from; ``--resume WORK_DIR`` takes its latest
    checkpoint; checkpoints of two fine-tunes in one work dir (their run
    ids) are said."""
    from mmengine.config import Config

    from olor_mm.cli import resume_options
    path, _ = toy_pretrained
    cfg = Config(dict(work_dir=str(tmp_path / 'elsewhere'), load_from=path))
    with pytest.raises(ValueError, match='weights-only.*load_from=<it>'):
        resume_options(cfg, path)  # (d) the pretrained checkpoint
    first = _toy_run(tmp_path, 'run', 6, load_from=path)
    note = resume_options(cfg, str(tmp_path / 'run'))  # (e) a work dir
    assert cfg.resume is True
    assert cfg.load_from == str(tmp_path / 'run' / 'iter_6.pth')
    assert 'WARNING' not in note
    # (f) a second fine-tune started in the same work dir, not resumed: it
    # writes over iter_3.pth, and iter_6.pth is the first one's
    second = _toy_run(tmp_path, 'run', 3, load_from=path)
    ids = {
        find_anchor(r.optim_wrapper.optimizer).run_id
        for r in (first, second)
    }
    assert len(ids) == 2
    note = resume_options(cfg, str(tmp_path / 'run'))
    assert cfg.load_from == str(tmp_path / 'run' / 'iter_3.pth')
    assert 'holds checkpoints of 2 fine-tunes' in note
    assert all(i in note for i in ids)


def _two_checkpoints(tmp_path, **paramwise):
    path, _ = pretrained_checkpoint(tmp_path)
    work = tmp_path / 'run'
    toy_runner(work, sgd_wrapper_cfg(**paramwise), load_from=path).train()
    return work


def _resume_log(work, wrapper):
    resumed_runner(work, wrapper, max_iters=9).train()
    logs = sorted(glob.glob(str(work / '*' / '*.log')), key=osp.getmtime)
    return open(logs[-1]).read()


def test_another_optimizer_impl_on_resume_is_said(tmp_path):
    work = _two_checkpoints(tmp_path, optimizer_impl='fused')
    log = _resume_log(work, sgd_wrapper_cfg(optimizer_impl='foreach'))
    assert "the checkpoint's kernel (fused) runs, not the one this config " \
        'chose (foreach' in log


def test_another_anchor_dtype_on_resume_is_said(tmp_path):
    work = _two_checkpoints(tmp_path)
    log = _resume_log(work, sgd_wrapper_cfg(anchor_dtype='bfloat16'))
    assert 'theta0 was saved in torch.float32 and is kept in ' \
        'torch.bfloat16 now' in log


def test_another_optimizer_on_resume_is_refused(tmp_path):
    work = _two_checkpoints(tmp_path)
    adamw = copy.deepcopy(sgd_wrapper_cfg())
    adamw['optimizer'] = dict(type='AdamW', lr=1e-3)
    with pytest.raises(ValueError, match="optimizer.type='SGD'"):
        resumed_runner(work, adamw, max_iters=9).train()


def test_a_plain_checkpoint_names_the_missing_theta0(tmp_path):
    """The error names the cause and the fix (MMEngine's line "Loads
    checkpoint ... from path" just before it names the file)."""
    plain = toy_runner(
        tmp_path / 'plain',
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        max_iters=3)
    plain.train()
    ckpt = str(tmp_path / 'plain' / 'iter_3.pth')
    resumed = resumed_runner(tmp_path / 'olor', adamw_wrapper_cfg(), ckpt)
    with pytest.raises(KeyError, match="no 'olor_rollback'.*load_from"):
        resumed.train()


def test_a_checkpoint_of_another_model_names_the_shapes(tmp_path):
    toy_runner(
        tmp_path / 'small',
        adamw_wrapper_cfg(),
        max_iters=3,
        model=dict(type='ToyClassifier', width=4)).train()
    ckpt = str(tmp_path / 'small' / 'iter_3.pth')
    resumed = resumed_runner(
        tmp_path / 'wide',
        adamw_wrapper_cfg(),
        ckpt,
        model=dict(type='ToyClassifier', width=6))
    # the optimizer state is checked before theta0: the moments' shapes
    with pytest.raises(
            ValueError,
            match=r'backbone.conv1.weight has shape \(6, 3, 3, 3\), its '
            r"'exp_avg' in the checkpoint \(4, 3, 3, 3\).*another"):
        resumed.train()


@pytest.mark.parametrize('key, value', [('layer_unit', 'param'),
                                        ('pretrained_prefixes', ('', ))])
def test_another_numbering_is_refused_naming_both_values(tmp_path, key, value):
    work, _ = adamw_checkpoints(tmp_path)
    edited = adamw_wrapper_cfg(**{key: value})
    if key in ('pretrained_prefixes', 'layer_unit'):
        # layer_unit='param' numbers tensors: no patterns with it
        edited['paramwise_cfg'].pop('layer_patterns')
    resumed = resumed_runner(work, edited, max_iters=9)
    import re
    with pytest.raises(
            ValueError,
            match=f'{key}=.*this set-up has {key}=' + re.escape(repr(value))):
        resumed.train()


def test_edited_hyper_parameters_the_checkpoints_apply(tmp_path):
    """rollback_max, rollback_power, scale_with_lr edited between the run
    and its resume: the checkpoint's apply (as torch restores every
    group's values), in the Runner and in the plain API alike."""
    work, _ = adamw_checkpoints(tmp_path)
    edited = adamw_wrapper_cfg(
        rollback_max=0.5, rollback_power=2.0, scale_with_lr=False)
    resumed = resumed_runner(work, edited, max_iters=9)
    resumed.train()
    handle = olor_mm.find_rollback(resumed.optim_wrapper.optimizer)
    assert handle.scale_with_lr is True  # the checkpoint's
    groups = resumed.optim_wrapper.optimizer.param_groups
    lams = {g['rollback'] for g in groups}
    assert max(lams) == pytest.approx(0.2)  # the checkpoint's rollback_max
    import glob
    log = max(glob.glob(str(work / '*' / '*.log')), key=osp.getmtime)
    with open(log) as f:  # in the run's own log, one line
        notice = [
            line for line in f
            if "the checkpoint's OLOR hyper-parameters apply" in line
        ]
    assert len(notice) == 1
    assert 'rollback_max=0.2' in notice[0] and 'rollback_max=0.5' in notice[0]
    # the plain API follows the same rule for scale_with_lr
    model = ToyClassifier()
    groups = olor_mm.layerwise_rollback_groups(model, rollback_max=0.1)
    opt = torch.optim.SGD(groups, lr=0.1)
    olor_mm.attach_rollback(opt, scale_with_lr=False).snapshot()
    state = opt.state_dict()
    opt2 = torch.optim.SGD(
        olor_mm.layerwise_rollback_groups(model, rollback_max=0.1), lr=0.1)
    h2 = olor_mm.attach_rollback(opt2, scale_with_lr=True)
    opt2.load_state_dict(state)
    assert h2.scale_with_lr is False


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


def test_P4_E12_a_group_of_another_size_is_named():
    """One more tensor frozen on resume: "4 param groups, this optimizer
    4" named nothing. Now: the group, both sizes, and freezing."""
    torch.manual_seed(0)
    model = ProbeNet()
    opt, _ = probe_setup(model)
    probe_step(model, opt)
    state = opt.state_dict()
    again = ProbeNet()
    again.head.bias.requires_grad_(False)  # the new head's group: 1 tensor
    fresh, _ = probe_setup(again)
    with pytest.raises(ValueError) as err:
        fresh.load_state_dict(state)
    text = str(err.value)
    assert 'param group' in text and 'holds' in text
    assert 'frozen (requires_grad)' in text
