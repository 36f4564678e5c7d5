"""RollbackDriftHook's guards (olor_mm/engine/hooks.py): a weights-only
file given to --resume, and non-finite weights never saved over the last
good checkpoint (misuse probe B13, D1; the never-silent probe)."""
import pytest
import torch
from e2e_utils import state
from mmengine.runner import Runner
from toy import (TOY_LAYERS, nan_hook, olor_wrapper_cfg, pretrained_checkpoint,
                 runner_cfg, sgd_wrapper_cfg, toy_runner)


def test_B13_resuming_a_weights_only_checkpoint_names_file_and_fix(tmp_path):
    path, _ = pretrained_checkpoint(tmp_path)
    runner = toy_runner(
        tmp_path / 'run',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        load_from=path,
        resume=True,
        custom_hooks=[dict(type='RollbackDriftHook')])  # as shipped
    with pytest.raises(KeyError, match=f'{path}.*weights-only.*load_from'):
        runner.train()


@pytest.mark.parametrize('target', ['head.weight', 'backbone.layer2.1.0.bias'])
@pytest.mark.parametrize('guard', ['drift hook', 'olor-mm tools'])
def test_D1_nan_outside_the_rollback_is_never_saved(tmp_path, target, guard):
    """The head (not anchored) or the deepest layer (lam 0) diverged; the
    last complete checkpoint stays, with max_keep_ckpts=1 too: the drift
    hook of the shipped configs refuses before MMEngine's CheckpointHook
    removes the old one, and olor-mm's tools save with a hook that removes
    it only after the new one is complete."""
    from mmengine.config import Config

    from olor_mm.cli import build_runner
    path, _ = pretrained_checkpoint(tmp_path)
    hooks = [nan_hook('NaNForD1', target)]
    if guard == 'drift hook':
        hooks.append(dict(type='RollbackDriftHook'))
    cfg = runner_cfg(
        tmp_path / 'run',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        max_iters=9,
        load_from=path,
        custom_hooks=hooks,
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=3,
                by_epoch=False,
                max_keep_ckpts=1)))
    runner = (
        Runner.from_cfg(cfg) if guard == 'drift hook' else build_runner(
            Config(cfg)))
    with pytest.raises(FloatingPointError, match='last_checkpoint names it'):
        runner.train()
    kept = sorted(p.name for p in (tmp_path / 'run').glob('*.pth'))
    assert kept == ['iter_3.pth']
    last = (tmp_path / 'run' / 'last_checkpoint').read_text().strip()
    assert last.endswith('iter_3.pth')
    state = torch.load(tmp_path / 'run' / 'iter_3.pth', weights_only=False)
    assert all(
        bool(torch.isfinite(v).all()) for v in state['state_dict'].values()
        if v.is_floating_point())


def test_non_finite_weights_stop_the_run_keeping_the_last_checkpoint(tmp_path):
    """A diverged step (NaN weights) stops the run at the next checkpoint
    with an error pointing at the last good one, which max_keep_ckpts=1
    keeps: the drift hook of the shipped configs refuses before MMEngine's
    CheckpointHook removes the old checkpoint."""
    path, _ = pretrained_checkpoint(tmp_path)
    runner = toy_runner(
        tmp_path / 'run',
        sgd_wrapper_cfg(),
        max_iters=9,
        load_from=path,
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=3,
                by_epoch=False,
                max_keep_ckpts=1)),
        custom_hooks=[
            nan_hook('DivergeAt4', 'backbone.conv1.weight'),
            dict(type='RollbackDriftHook')
        ])
    with pytest.raises(FloatingPointError) as info:
        runner.train()
    assert 'work_dir/last_checkpoint names it' in str(info.value)
    assert (tmp_path / 'run' / 'iter_3.pth').is_file()
    assert not (tmp_path / 'run' / 'iter_6.pth').exists()
    kept = state(tmp_path / 'run' / 'iter_3.pth')['state_dict']
    assert all(torch.isfinite(v).all() for v in kept.values())
    assert (tmp_path / 'run' /
            'last_checkpoint').read_text().endswith('iter_3.pth')
