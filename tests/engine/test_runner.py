"""Through a real MMEngine Runner: theta0 after load_from, save/resume, a
param scheduler on lam_i, two Runners in one process (misuse probe A15,
B4, E3, E4)."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import CheckpointLoader
from toy import (TOY_LAYERS, ToyClassifier, nan_hook, olor_wrapper_cfg,
                 param_copies, pretrained_checkpoint, resumed_runner,
                 toy_groups, toy_runner)

import olor_mm  # noqa: F401
from olor_mm import attach_rollback, find_rollback


def _wrapper():
    return olor_wrapper_cfg(
        dict(type='AdamW', lr=1e-2, weight_decay=0.05),
        rollback_max=0.1,
        layer_patterns=TOY_LAYERS,
        custom_keys={'backbone': dict(decay_mult=0.)})


def test_theta0_is_the_loaded_weights_not_the_random_init(
        tmp_path, toy_pretrained):
    path, pretrained = toy_pretrained
    runner = toy_runner(
        tmp_path / 'ft', _wrapper(), max_iters=3, load_from=path)
    runner.train()
    ow = runner.optim_wrapper
    rolled = [
        n for n, p in runner.model.named_parameters()
        if any(p is q for q in ow.anchored_params)
    ]
    assert rolled and all(n.startswith('backbone.') for n in rolled)
    for name, t0 in zip(rolled, ow.theta0):
        assert torch.equal(t0, pretrained[name]), name


@pytest.mark.exact_resume
def test_resume_continues_identically_and_restores_theta0(
        tmp_path, toy_pretrained):
    path, pretrained = toy_pretrained
    straight = toy_runner(tmp_path / 'straight', _wrapper(), load_from=path)
    straight.train()

    first = toy_runner(
        tmp_path / 'split', _wrapper(), max_iters=3, load_from=path)
    first.train()
    ckpt = osp.join(tmp_path, 'split', 'iter_3.pth')
    assert osp.isfile(ckpt)
    # torch >= 2.6 refuses MMEngine's own checkpoints by default ...
    with pytest.raises(Exception, match='HistoryBuffer|weights_only'):
        torch.load(ckpt)
    # ... and olor_mm's loader scheme reads them
    saved = CheckpointLoader.load_checkpoint(ckpt)
    assert 'olor_rollback' in saved['optimizer']

    second = resumed_runner(tmp_path / 'split', _wrapper(), ckpt)
    second.train()
    assert second.iter == 6
    for name, t0 in zip([
            n for n, _ in second.model.named_parameters()
            if n.startswith('backbone.')
    ], second.optim_wrapper.theta0):
        # restored, not re-taken
        assert torch.equal(t0, pretrained[name]), name
    a, b = param_copies(straight), param_copies(second)
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize('kind', ['OLOROptimWrapper', 'L2SPOptimWrapper'])
def test_resume_from_a_checkpoint_without_theta0_fails(tmp_path, kind):
    plain = toy_runner(
        tmp_path / 'plain',
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        max_iters=3)
    plain.train()
    resumed = resumed_runner(tmp_path / 'plain', dict(_wrapper(), type=kind),
                             tmp_path / 'plain' / 'iter_3.pth')
    with pytest.raises(KeyError, match='theta0'):
        resumed.train()


def test_resume_without_optimizer_state_fails(tmp_path):
    first = toy_runner(tmp_path / 'a', _wrapper(), max_iters=3)
    first.train()
    resumed = resumed_runner(tmp_path / 'a', _wrapper(),
                             tmp_path / 'a' / 'iter_3.pth')
    orig = resumed.resume

    def resume_without_optimizer(filename, **kwargs):
        return orig(filename, resume_optimizer=False)

    resumed.resume = resume_without_optimizer
    with pytest.raises(RuntimeError, match='no theta0 was restored'):
        resumed.train()


def test_rollback_pulls_the_backbone_toward_theta0(tmp_path, toy_pretrained):
    path, pretrained = toy_pretrained
    plain_wrapper = copy.deepcopy(_wrapper())
    plain_wrapper['paramwise_cfg'].update(rollback_max=0.0)
    drift = {}
    for tag, wrapper in (('olor', _wrapper()), ('plain', plain_wrapper)):
        runner = toy_runner(tmp_path / tag, wrapper, load_from=path)
        runner.train()
        drift[tag] = sum((p - pretrained[n]).norm()**2
                         for n, p in runner.model.named_parameters()
                         if n.startswith('backbone.'))**0.5
    assert drift['olor'] < 0.9 * drift['plain']


def test_A15_under_a_runner_the_group_without_theta0_is_named(tmp_path):
    path, _ = pretrained_checkpoint(tmp_path)

    @HOOKS.register_module(force=True)
    class RollbackOnAt2(Hook):

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter == 2:
                for g in runner.optim_wrapper.optimizer.param_groups:
                    if g.get('layer_id') is not None:
                        g['rollback'] = 0.5

    runner = toy_runner(
        tmp_path / 'run',
        olor_wrapper_cfg(
            dict(type='SGD', lr=0.1),
            rollback_max=0.,
            layer_patterns=TOY_LAYERS),
        load_from=path,
        custom_hooks=[dict(type='RollbackOnAt2')])
    with pytest.raises(RuntimeError, match='param group 0 rolls back'):
        runner.train()


def test_B4_a_param_scheduler_ramps_lam_i(tmp_path):
    """MMEngine's LinearParamScheduler on 'rollback': lam_i of every layer
    times start_factor + (1 - start_factor) * t / (end - 1) (MMEngine's
    total_iters = end - begin - 1), by hand: 0.2 * (0.5, 2/3, 5/6, 1)."""
    path, _ = pretrained_checkpoint(tmp_path)
    seen = []

    @HOOKS.register_module(force=True)
    class RecordLam(Hook):

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            groups = runner.optim_wrapper.optimizer.param_groups
            seen.append(
                next(g for g in groups if g.get('layer_id') == 0)['rollback'])

    toy_runner(
        tmp_path / 'run',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        load_from=path,
        custom_hooks=[dict(type='RecordLam')],
        param_scheduler=[
            dict(
                type='LinearParamScheduler',
                param_name='rollback',
                start_factor=0.5,
                end=4,
                by_epoch=False)
        ]).train()
    np.testing.assert_allclose(seen, [0.1, 0.4 / 3, 0.5 / 3, 0.2, 0.2, 0.2])


def test_E3_a_sweep_names_its_own_last_checkpoint(tmp_path):
    path, _ = pretrained_checkpoint(tmp_path)
    cfg = olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS)
    ckpt = dict(
        checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False))
    toy_runner(
        tmp_path / 'runA',
        cfg,
        max_iters=6,
        load_from=path,
        default_hooks=ckpt).train()
    run_b = toy_runner(
        tmp_path / 'runB',
        cfg,
        max_iters=9,
        load_from=path,
        default_hooks=ckpt,
        custom_hooks=[nan_hook('NaNForE3', 'backbone.conv1.weight')])
    with pytest.raises(FloatingPointError) as err:
        run_b.train()
    assert 'runA' not in str(err.value)  # nothing of another run
    assert 'last_checkpoint names it' in str(err.value)
    last = (tmp_path / 'runB' / 'last_checkpoint').read_text().strip()
    assert last == str(tmp_path / 'runB' / 'iter_3.pth')


def test_E4_a_later_load_names_no_stale_checkpoint(tmp_path):
    path, _ = pretrained_checkpoint(tmp_path)
    cfg = olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS)
    toy_runner(tmp_path / 'run', cfg, max_iters=3, load_from=path).train()
    toy_runner(tmp_path / 'run', cfg, max_iters=6, resume=True).train()
    model = ToyClassifier()
    opt = torch.optim.SGD(toy_groups(model), lr=0.1)
    attach_rollback(opt)
    with pytest.raises(KeyError) as err:
        opt.load_state_dict(
            torch.optim.SGD(toy_groups(model), lr=0.1).state_dict())
    assert 'iter_3.pth' not in str(err.value)
    assert find_rollback(opt) is not None and olor_mm is not None
