"""Never silently wrong, never lost: the cases a probe found wrong or lost.

Each test below failed before olor-mm 0.3 (the probe of issue 23) and
passes now; docs/reliability.md lists them with their verdict.
"""
import copy
import glob
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from mmengine.registry import HOOKS
from toy import (TOY_LAYERS, ToyClassifier, olor_wrapper_cfg,
                 pretrained_checkpoint, resumed_runner, runner_cfg, toy_runner)

from olor_mm import attach_rollback, find_rollback, layerwise_rollback_groups
from olor_mm.core.theta0 import saved_theta0

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTS = osp.join(ROOT, 'tests')
ENV = dict(
    os.environ,
    PYTHONPATH=TESTS + os.pathsep + os.environ.get('PYTHONPATH', ''),
    OMP_NUM_THREADS='1')


def _wrapper(**paramwise):
    paramwise.setdefault('rollback_max', 0.2)
    paramwise.setdefault('layer_patterns', TOY_LAYERS)
    return olor_wrapper_cfg(dict(type='SGD', lr=0.1), **paramwise)


def _config(tmp_path, **extra):
    """A toy config file for tools/train.py, loading the toy 'pretrained'
    checkpoint; returns (path, pretrained state dict)."""
    path, pretrained = pretrained_checkpoint(tmp_path)
    cfg = runner_cfg(
        'unused',
        _wrapper(),
        max_iters=6,
        load_from=path,
        custom_imports=dict(
            imports=['olor_mm', 'toy'], allow_failed_imports=False))
    cfg.pop('work_dir')
    cfg.update(extra)
    config = tmp_path / 'toy.py'
    Config(cfg).dump(str(config))
    return str(config), pretrained


def _train(config, work, *extra, check=True, env=ENV):
    return subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
        str(work), *extra
    ],
                          env=env,
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600,
                          check=check)


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


# ---------------------------------------------- 1. resume with nothing yet
def test_resume_with_nothing_to_resume_keeps_load_from(tmp_path):
    """A requeue script's first launch: --resume in an empty work dir. The
    run starts from load_from (theta0 = the pretrained weights), not from
    the random initialisation MMDetection's script leaves."""
    config, pretrained = _config(tmp_path)
    out = _train(config, tmp_path / 'run', '--resume')
    assert 'nothing to resume' in out.stdout
    state = _state(tmp_path / 'run' / 'iter_6.pth')
    theta0 = saved_theta0(state['optimizer']).values()
    backbone = [
        pretrained[n] for n, _ in ToyClassifier().named_parameters()
        if n.startswith('backbone.')
    ]
    # every backbone tensor but the deepest layer's two (lam 0) is anchored
    assert len(theta0) == len(backbone) - 2
    for t in theta0:  # every theta0 tensor is a pretrained value
        assert any(torch.equal(t, v) for v in backbone)
    # the second launch resumes
    _train(config, tmp_path / 'run', '--resume')  # finished: nothing runs
    assert (tmp_path / 'run' /
            'last_checkpoint').read_text().endswith('iter_6.pth')


def test_theta0_from_weights_nothing_was_loaded_into_is_said(tmp_path):
    """MMDetection's --resume in an empty work dir clears load_from: under
    any tool, a theta0 from weights no checkpoint reached is a warning
    naming the fix."""
    runner = toy_runner(tmp_path / 'run', _wrapper(), resume=True)
    runner.train()
    log = open(glob.glob(str(tmp_path / 'run' / '*' / '*.log'))[0]).read()
    assert 'no checkpoint was loaded into the model' in log
    assert 'Set load_from=<the pretrained checkpoint>' in log
    assert '--resume clears load_from' in log
    # with load_from, nothing is said
    path, _ = pretrained_checkpoint(tmp_path)
    toy_runner(tmp_path / 'ok', _wrapper(), load_from=path).train()
    log = open(glob.glob(str(tmp_path / 'ok' / '*' / '*.log'))[0]).read()
    assert 'no checkpoint was loaded' not in log


# ------------------------------------------- 2. lam_eff never exceeds lam_i
def _rising_then_falling(opt, kind):
    if kind == 'onecycle':
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.1, total_steps=20)
    if kind == 'restarts':
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=5)
    if kind == 'mmengine-onecycle':
        from mmengine.optim import OneCycleLR
        return OneCycleLR(opt, eta_max=0.1, total_steps=20, by_epoch=False)
    return None  # by hand


@pytest.mark.parametrize(
    'kind', ['onecycle', 'mmengine-onecycle', 'restarts', 'by-hand'])
def test_lam_eff_stays_within_lam_i_for_every_schedule(kind):
    """lr_0 is the largest lr a group has had: lam_eff = lam_i * lr_t /
    lr_0 <= lam_i whatever the schedule, and a weight is never thrown
    past theta0 (a zero-gradient run only ever comes closer to it)."""
    torch.manual_seed(0)
    model = ToyClassifier()
    groups = layerwise_rollback_groups(
        model, rollback_max=0.05, layer_patterns=TOY_LAYERS)
    opt = torch.optim.SGD(groups, lr=0.001 if kind == 'by-hand' else 0.1)
    handle = attach_rollback(opt)
    scheduler = _rising_then_falling(opt, kind)
    weight = model.backbone.conv1.weight
    seen, distances = [], []
    for step in range(20):
        if kind == 'by-hand':  # a warm-up written by hand: x100 in 8 steps
            for g in opt.param_groups:
                g['lr'] = 0.001 * min(100, 1.8**step)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        if step == 1:  # move away from theta0 once, after it is taken
            with torch.no_grad():
                weight.add_(1.0)
        opt.step()
        seen.append([g['lr'] for g in opt.param_groups])
        lams = handle.lam_effs()
        for gi, g in enumerate(opt.param_groups):
            peak = max([g.get('initial_lr', 0)] + [s[gi] for s in seen])
            expected = g['rollback'] * g['lr'] / peak
            assert lams[gi] == pytest.approx(expected, rel=1e-12, abs=0)
            assert 0 <= lams[gi] <= g['rollback'] + 1e-15
        distances.append(float((weight - handle.theta0[0]).norm()))
        if scheduler is not None:
            scheduler.step()
    # the lr did rise (above every earlier lr, or again after a restart)
    assert any(b[0] > a[0] for a, b in zip(seen, seen[1:]))
    assert all(b <= a + 1e-6 for a, b in zip(distances[1:], distances[2:]))


def test_a_group_with_lr_0_is_accepted_and_listed_frozen(mm_log):
    """MMEngine freezes a layer with lr_mult=0: it never moves, so its
    rollback is a no-op; the table lists it with 0 trainable tensors."""
    model = ToyClassifier()
    wrapper = _wrapper()
    wrapper['paramwise_cfg']['custom_keys'] = {
        'backbone.layer1': dict(lr_mult=0.)
    }
    ow = build_optim_wrapper(model, wrapper)
    table = next(r.getMessage() for r in mm_log
                 if 'OLOR layer-wise rollback' in r.getMessage())
    row = next(line.split() for line in table.splitlines()
               if line.split()[:1] == ['1'])  # layer1.0
    assert row[2] == '0'
    before = model.backbone.layer1[0][0].weight.detach().clone()
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    ow.step()
    assert torch.equal(model.backbone.layer1[0][0].weight, before)


def test_a_schedule_that_lifts_an_lr_of_0_is_said(mm_log):
    """CosineAnnealingLR toward eta_min > 0 raises an lr_mult=0 group's lr
    (MMEngine's schedule, not a freeze): the 'frozen' layer trains, so it is
    said once, with the fix."""
    from mmengine.optim.scheduler import CosineAnnealingLR
    model = ToyClassifier()
    wrapper = _wrapper()
    wrapper['paramwise_cfg']['custom_keys'] = {
        'backbone.layer1': dict(lr_mult=0.)
    }
    ow = build_optim_wrapper(model, wrapper)
    frozen = [g for g in ow.optimizer.param_groups if g['lr'] == 0]
    assert frozen
    sched = CosineAnnealingLR(ow, T_max=4, eta_min=1e-3, by_epoch=False)
    for _ in range(3):
        model(torch.rand(2, 3, 8, 8)).sum().backward()
        ow.step()
        ow.zero_grad()
        sched.step()
    assert all(g['lr'] > 0 for g in frozen)  # MMEngine lifted them
    said = [
        r.getMessage() for r in mm_log if 'built with lr 0' in r.getMessage()
    ]
    assert len(said) == len(frozen) and 'eta_min=0' in said[0]


# ------------------------------------------------ 3. shared (tied) weights
class Tied(nn.Module):
    """A head registered first whose weight is the backbone's (tied)."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 3, bias=False)
        self.backbone = nn.Module()
        self.backbone.embed = nn.Linear(3, 3)
        self.backbone.blocks = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
        self.head.weight = self.backbone.embed.weight

    def forward(self, x):
        return self.head(self.backbone.blocks(self.backbone.embed(x)))


@pytest.mark.parametrize('path', ['merged', 'per-parameter', 'plain'])
def test_a_tied_weight_is_updated_once_and_rolls_back_as_pretrained(path):
    torch.manual_seed(0)
    model = Tied()
    if path == 'plain':
        opt = torch.optim.SGD(
            layerwise_rollback_groups(
                model, ('backbone', ), rollback_max=0.5, rollback_power=0.),
            lr=0.1)
        attach_rollback(opt)
    else:
        opt = build_optim_wrapper(
            model,
            dict(
                optimizer=dict(type='SGD', lr=0.1),
                constructor='LayerwiseRollbackConstructor',
                paramwise_cfg=dict(
                    rollback_max=0.5,
                    rollback_power=0.,
                    merge_groups=path == 'merged'))).optimizer
    tied = model.backbone.embed.weight
    listed = [p for g in opt.param_groups for p in g['params']]
    assert sum(p is tied for p in listed) == 1
    assert len({id(p) for p in listed}) == len(listed)
    group = next(
        g for g in opt.param_groups if any(p is tied for p in g['params']))
    assert group['rollback'] == 0.5  # pretrained by its backbone name
    theta0 = tied.detach().clone()
    model(torch.ones(1, 3)).sum().backward()
    grad = tied.grad.clone()
    opt.step()
    once = theta0 - 0.1 * grad  # one SGD step, then the lerp
    torch.testing.assert_close(tied.detach(), once + 0.5 * (theta0 - once))


# ---------------------------------------------- 4. load, then attach: lost
def test_attaching_after_load_state_dict_is_refused_naming_the_order():
    model = ToyClassifier()
    opt = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1,
        momentum=0.9)
    attach_rollback(opt)
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    opt.step()
    saved = opt.state_dict()
    fresh = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1,
        momentum=0.9)
    fresh.load_state_dict(saved)  # torch drops 'olor_rollback' here
    with pytest.raises(RuntimeError, match='no anchor is attached'):
        fresh.step()  # the bare optimizer would train without the rollback
    attach_rollback(fresh)
    with pytest.raises(RuntimeError, match='then load_state_dict'):
        fresh.step()  # theta0 would be the fine-tuned weights
    fresh.load_state_dict(saved)  # now with the rollback attached: restored
    assert find_rollback(fresh).theta0 is not None
    # the right order restores theta0
    right = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1,
        momentum=0.9)
    handle = attach_rollback(right)
    right.load_state_dict(saved)
    assert handle.theta0 is not None
    # and on purpose, from the current weights
    find_rollback(fresh).remove()
    attach_rollback(fresh, from_current_weights=True)
    fresh.step()


# ------------------------------------------- 6. parameters that join later
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


def test_a_param_group_added_later_is_anchored_and_resumes():
    torch.manual_seed(0)
    model = ToyClassifier()
    extra = nn.Linear(2, 2)
    opt = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1)
    handle = attach_rollback(opt)
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    opt.step()  # theta0 taken
    opt.add_param_group(dict(params=list(extra.parameters()), rollback=0.5))
    start = extra.weight.detach().clone()
    extra(torch.ones(1, 2)).sum().backward()
    opt.step()
    hat = start - 0.1 * extra.weight.grad
    torch.testing.assert_close(extra.weight.detach(),
                               hat + 0.5 * (start - hat))
    assert len(handle.theta0) == len(handle.anchored_params)
    saved = opt.state_dict()
    again = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1)
    again_handle = attach_rollback(again)
    again.add_param_group(dict(params=list(extra.parameters()), rollback=0.5))
    again.load_state_dict(saved)  # resumable
    assert torch.equal(again_handle.theta0[-2], start)


# ------------------------------------------------- 7. a NaN step in fp32
@HOOKS.register_module(force=True)
class DivergeAt(Hook):
    """Make a weight NaN after iteration ``at``: a diverged step."""

    def __init__(self, at):
        self.at = at

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        if runner.iter == self.at:
            with torch.no_grad():
                runner.model.backbone.conv1.weight.fill_(float('nan'))


def test_non_finite_weights_stop_the_run_keeping_the_last_checkpoint(tmp_path):
    """A diverged step (NaN weights) stops the run at the next checkpoint
    with an error pointing at the last good one, which max_keep_ckpts=1
    keeps: the drift hook of the shipped configs refuses before MMEngine's
    CheckpointHook removes the old checkpoint."""
    path, _ = pretrained_checkpoint(tmp_path)
    runner = toy_runner(
        tmp_path / 'run',
        _wrapper(),
        max_iters=9,
        load_from=path,
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=3,
                by_epoch=False,
                max_keep_ckpts=1)),
        custom_hooks=[
            dict(type='DivergeAt', at=4),
            dict(type='RollbackDriftHook')
        ])
    with pytest.raises(FloatingPointError) as info:
        runner.train()
    assert 'work_dir/last_checkpoint names it' in str(info.value)
    assert (tmp_path / 'run' / 'iter_3.pth').is_file()
    assert not (tmp_path / 'run' / 'iter_6.pth').exists()
    kept = _state(tmp_path / 'run' / 'iter_3.pth')['state_dict']
    assert all(torch.isfinite(v).all() for v in kept.values())
    assert (tmp_path / 'run' /
            'last_checkpoint').read_text().endswith('iter_3.pth')


# ---------------------------------------------- 8. settings edited on resume
def _two_checkpoints(tmp_path, **paramwise):
    path, _ = pretrained_checkpoint(tmp_path)
    work = tmp_path / 'run'
    toy_runner(work, _wrapper(**paramwise), load_from=path).train()
    return work


def _resume_log(work, wrapper):
    resumed_runner(work, wrapper, max_iters=9).train()
    logs = sorted(glob.glob(str(work / '*' / '*.log')), key=osp.getmtime)
    return open(logs[-1]).read()


def test_another_optimizer_impl_on_resume_is_said(tmp_path):
    work = _two_checkpoints(tmp_path, optimizer_impl='fused')
    log = _resume_log(work, _wrapper(optimizer_impl='foreach'))
    assert "the checkpoint's kernel (fused) runs, not the one this config " \
        'chose (foreach' in log


def test_another_anchor_dtype_on_resume_is_said(tmp_path):
    work = _two_checkpoints(tmp_path)
    log = _resume_log(work, _wrapper(anchor_dtype='bfloat16'))
    assert 'theta0 was saved in torch.float32 and is kept in ' \
        'torch.bfloat16 now' in log


def test_another_optimizer_on_resume_is_refused(tmp_path):
    work = _two_checkpoints(tmp_path)
    adamw = copy.deepcopy(_wrapper())
    adamw['optimizer'] = dict(type='AdamW', lr=1e-3)
    with pytest.raises(ValueError, match="optimizer.type='SGD'"):
        resumed_runner(work, adamw, max_iters=9).train()


# ------------------------------------------------------ 9. unsafe loads
class Planted:
    """What a planted checkpoint would run on unpickling."""

    def __reduce__(self):
        return (os.system, ('echo planted', ))


def test_the_harness_loads_checkpoints_weights_only(tmp_path):
    from olor_mm.tools.experiment import load
    planted = tmp_path / 'planted.pth'
    torch.save(dict(state_dict={}, x=Planted()), planted)
    with pytest.raises(pickle.UnpicklingError, match='posix.system|system'):
        load(str(planted))
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2))), good)
    assert torch.equal(load(str(good))['state_dict']['w'], torch.ones(2))


# ------------------------------------------------ 10. a kill while saving
#: a slow disk: with SLOW_SAVE set, the second checkpoint's bytes are
#: written half, then the rest after SLOW_SAVE seconds
SLOW_SAVE = '''
import os
import time

from mmengine.fileio.backends import LocalBackend

_put = LocalBackend.put


def slow_put(self, obj, filepath):
    if not (os.environ.get('SLOW_SAVE') and '6.pth' in str(filepath)):
        return _put(self, obj, filepath)
    with open(filepath, 'wb') as f:
        f.write(obj[:len(obj) // 2])
        f.flush()
        time.sleep(float(os.environ['SLOW_SAVE']))
        f.write(obj[len(obj) // 2:])


LocalBackend.put = slow_put
'''


def test_a_kill_while_saving_leaves_a_checkpoint_resume_finds(tmp_path):
    """max_keep_ckpts=1, the run killed while it writes its second
    checkpoint (a slow disk): last_checkpoint names a complete file, and
    --resume continues to the same weights as a run never killed."""
    (tmp_path / 'mods').mkdir()  # not beside the config file toy.py
    (tmp_path / 'mods' / 'slow_save.py').write_text(SLOW_SAVE)
    config, _ = _config(
        tmp_path,
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(
                type='CheckpointHook',
                interval=3,
                by_epoch=False,
                max_keep_ckpts=1)),
        custom_imports=dict(
            imports=['olor_mm', 'toy', 'slow_save'],
            allow_failed_imports=False))
    env = dict(
        ENV,
        PYTHONPATH=str(tmp_path / 'mods') + os.pathsep + ENV['PYTHONPATH'])
    straight = tmp_path / 'straight'
    _train(config, straight, env=env)
    work = tmp_path / 'killed'
    cmd = [
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
        str(work)
    ]
    proc = subprocess.Popen(
        cmd,
        env=dict(env, SLOW_SAVE='30'),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    # the first checkpoint is complete; the second is being written
    while not glob.glob(str(work / '*6.pth*')):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = (work / 'last_checkpoint').read_text().strip()
    assert osp.isfile(last) and last.endswith('iter_3.pth')
    subprocess.run(
        cmd + ['--resume'],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600)
    a = _state(straight / 'iter_6.pth')
    b = _state(work / 'iter_6.pth')
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k]), k
    assert not glob.glob(str(work / '*.part'))


def test_numpy_and_tensor_numbers_are_accepted():
    for value in (np.float32(0.05), np.float64(0.05), torch.tensor(0.05)):
        groups = layerwise_rollback_groups(
            ToyClassifier(), rollback_max=value, layer_patterns=TOY_LAYERS)
        assert groups[0]['rollback'] == pytest.approx(0.05)
        ow = build_optim_wrapper(ToyClassifier(), _wrapper(rollback_max=value))
        assert ow.optimizer.param_groups[0]['rollback'] == pytest.approx(0.05)
