"""Faults: killed runs, damaged and wrong checkpoints, edited configs, NaN.

Each test breaks something on purpose, on tiny models on the CPU, and checks
what happens: a resumed run ends exactly where an uninterrupted one does,
theta0 is never taken from fine-tuned weights, and every wrong input stops
before a step with a message naming the file and the cause.
"""
import copy
import os
import os.path as osp
import random
import subprocess
import sys

import pytest
import torch
from e2e_utils import kill_after_checkpoint
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from toy import (TOY_LAYERS, ToyClassifier, olor_wrapper_cfg,
                 pretrained_checkpoint, resumed_runner, runner_cfg, toy_runner)

import olor_mm
from olor_mm.core.theta0 import saved_theta0

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTS = osp.join(ROOT, 'tests')


def _wrapper(**paramwise):
    paramwise.setdefault('rollback_max', 0.2)
    paramwise.setdefault('layer_patterns', TOY_LAYERS)
    return olor_wrapper_cfg(
        dict(type='AdamW', lr=1e-2, weight_decay=0.0), **paramwise)


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


# ----------------------------------------------------------- killed runs
def _toy_config(tmp_path, max_iters):
    path, _ = pretrained_checkpoint(tmp_path)
    cfg = runner_cfg(
        'unused',
        _wrapper(),
        max_iters=max_iters,
        load_from=path,
        custom_imports=dict(
            imports=['olor_mm', 'toy'], allow_failed_imports=False))
    cfg['default_hooks']['checkpoint'] = dict(
        type='CheckpointHook', interval=40, by_epoch=False, max_keep_ckpts=-1)
    cfg['default_hooks']['logger']['interval'] = 50
    cfg['train_dataloader']['dataset'] = dict(type='ToyDataset', size=64)
    cfg.pop('work_dir')
    config = tmp_path / 'toy.py'
    Config(cfg).dump(str(config))
    return str(config)


def _train_cmd(config, work_dir, *extra):
    return [
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
        str(work_dir), *extra
    ]


_ENV = dict(
    os.environ,
    PYTHONPATH=TESTS + os.pathsep + os.environ.get('PYTHONPATH', ''),
    OMP_NUM_THREADS='1')


def test_sigkill_after_a_checkpoint_then_resume_is_bit_identical(tmp_path):
    """tools/train.py killed with SIGKILL at a random point after its first
    checkpoint, restarted with --resume: the same final weights and theta0
    as a run never interrupted (a model without random sampling)."""
    config = _toy_config(tmp_path, max_iters=400)
    subprocess.run(
        _train_cmd(config, tmp_path / 'straight'),
        env=_ENV,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600)
    work = tmp_path / 'killed'
    kill_after_checkpoint(
        _train_cmd(config, work),
        work,
        delay=random.Random(0).uniform(0.0, 0.5),
        env=_ENV)
    assert not (work / 'iter_400.pth').is_file(), 'killed too late'
    subprocess.run(
        _train_cmd(config, work, '--resume'),
        env=_ENV,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600)
    a = _state(tmp_path / 'straight' / 'iter_400.pth')
    b = _state(work / 'iter_400.pth')
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k]), k
    ta = saved_theta0(a['optimizer'])
    tb = saved_theta0(b['optimizer'])
    assert ta.keys() == tb.keys()
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def _two_checkpoints(tmp_path):
    path, pretrained = pretrained_checkpoint(tmp_path)
    work = tmp_path / 'run'
    toy_runner(work, _wrapper(), load_from=path).train()
    return work, pretrained


def test_killed_while_saving_resume_takes_the_last_complete(tmp_path):
    """A kill during the save of iter_6.pth leaves it truncated and
    last_checkpoint at iter_3.pth (MMEngine writes it after the save)."""
    work, pretrained = _two_checkpoints(tmp_path)
    damaged = work / 'iter_6.pth'
    data = damaged.read_bytes()
    damaged.write_bytes(data[:len(data) // 2])
    (work / 'last_checkpoint').write_text(str(work / 'iter_3.pth'))
    # naming the damaged file explicitly: which file, and the way out
    explicit = resumed_runner(tmp_path / 'other', _wrapper(), damaged)
    with pytest.raises(
            RuntimeError,
            match=f'{damaged} cannot be read: it is '
            'damaged or incomplete.*iter_3.pth'):
        explicit.train()
    # --resume without a path: MMEngine's last_checkpoint, the complete one
    resumed = resumed_runner(work, _wrapper())
    resumed.train()
    assert resumed.iter == 6
    names = {id(p): n for n, p in resumed.model.named_parameters()}
    anchor = olor_mm.find_rollback(resumed.optim_wrapper.optimizer)
    for p, t in zip(anchor.anchored_params, anchor.theta0):
        assert torch.equal(t, pretrained[names[id(p)]])  # not fine-tuned


# -------------------------------------------------------- wrong checkpoints
def test_a_plain_checkpoint_names_the_missing_theta0(tmp_path):
    """The error names the cause and the fix (MMEngine's line "Loads
    checkpoint ... from path" just before it names the file)."""
    plain = toy_runner(
        tmp_path / 'plain',
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        max_iters=3)
    plain.train()
    ckpt = str(tmp_path / 'plain' / 'iter_3.pth')
    resumed = resumed_runner(tmp_path / 'olor', _wrapper(), ckpt)
    with pytest.raises(KeyError, match="no 'olor_rollback'.*load_from"):
        resumed.train()


def test_a_checkpoint_of_another_model_names_the_shapes(tmp_path):
    toy_runner(
        tmp_path / 'small',
        _wrapper(),
        max_iters=3,
        model=dict(type='ToyClassifier', width=4)).train()
    ckpt = str(tmp_path / 'small' / 'iter_3.pth')
    resumed = resumed_runner(
        tmp_path / 'wide',
        _wrapper(),
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
    work, _ = _two_checkpoints(tmp_path)
    edited = _wrapper(**{key: value})
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
    work, _ = _two_checkpoints(tmp_path)
    edited = _wrapper(
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


# ------------------------------------------------------------ non-finite
def _nan_step(clip_grad):
    """Two good steps, then one whose loss is NaN in the backbone's stem."""
    torch.manual_seed(0)
    model = ToyClassifier()
    cfg = _wrapper(optimizer_impl='torch_default')
    cfg['optimizer'] = dict(type='SGD', lr=0.1)
    if clip_grad is not None:
        cfg['clip_grad'] = clip_grad
    ow = build_optim_wrapper(model, cfg)
    x = torch.randn(4, 3, 8, 8)
    y = [*torch.tensor([0, 1, 2, 0])]
    for _ in range(2):
        ow.update_params(model(x, y, mode='loss')['loss'])
    anchor = olor_mm.find_rollback(ow.optimizer)
    theta0 = [t.clone() for t in anchor.theta0]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = model(x, y, mode='loss')['loss'] + \
        model.backbone.conv1.weight.sum() * float('nan')
    return model, ow, anchor, theta0, before, loss


def _finite(t):
    return bool(torch.isfinite(t).all())


def test_nan_loss_without_clipping_spreads_nowhere_but_its_tensor():
    model, ow, anchor, theta0, before, loss = _nan_step(None)
    ow.update_params(loss)
    params = dict(model.named_parameters())
    assert not _finite(params['backbone.conv1.weight'])  # its own NaN grad
    for n, p in params.items():
        if n != 'backbone.conv1.weight':
            assert _finite(p), n  # the rollback spread it nowhere
    for t, t0 in zip(anchor.theta0, theta0):
        assert torch.equal(t, t0) and _finite(t)  # theta0 untouched


def test_nan_loss_with_clipping_is_torchs_to_spread_not_the_rollbacks():
    """clip_grad_norm_ scales every gradient by max_norm / NaN: every
    weight that got a gradient becomes NaN (torch's), theta0 stays finite,
    so the last checkpoint's theta0 is intact."""
    model, ow, anchor, theta0, before, loss = _nan_step(dict(max_norm=1.0))
    ow.update_params(loss)
    assert not any(_finite(p) for p in model.parameters())
    for t, t0 in zip(anchor.theta0, theta0):
        assert torch.equal(t, t0) and _finite(t)


def test_nan_loss_with_error_if_nonfinite_stops_before_any_update():
    model, ow, anchor, theta0, before, loss = _nan_step(
        dict(max_norm=1.0, error_if_nonfinite=True))
    with pytest.raises(RuntimeError, match='non-finite'):
        ow.update_params(loss)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n  # no step, no rollback
    for t, t0 in zip(anchor.theta0, theta0):
        assert torch.equal(t, t0)


def test_theta0_is_never_taken_from_non_finite_weights():
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _wrapper())
    with torch.no_grad():
        model.backbone.conv1.weight[0, 0, 0, 0] = float('inf')
    with pytest.raises(ValueError, match='NaN or inf at their first update'):
        ow.optimizer.step()
    state = copy.deepcopy(ow.state_dict())
    assert state['olor_rollback']['taken'] is False
    assert saved_theta0(state) == {}
