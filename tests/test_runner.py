"""Through a real MMEngine Runner: theta0 after load_from, save/resume."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader
from toy import (TOY_LAYERS, olor_wrapper_cfg, param_copies, resumed_runner,
                 toy_runner)

import olor_mm  # noqa: F401


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
