"""A run killed with SIGKILL at a random point after its first checkpoint,
resumed with tools/train.py --resume: bit-identical to a run never
interrupted (docs/reliability.md, "Killed and resumed runs")."""
import os.path as osp
import random
import subprocess
import sys

import torch
from e2e_utils import TOOL_ENV, kill_after_checkpoint, state
from mmengine.config import Config
from paths import ROOT
from toy import adamw_wrapper_cfg, pretrained_checkpoint, runner_cfg

from olor_mm.core.theta0 import saved_theta0


def _toy_config(tmp_path, max_iters):
    path, _ = pretrained_checkpoint(tmp_path)
    cfg = runner_cfg(
        'unused',
        adamw_wrapper_cfg(),
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


def test_sigkill_after_a_checkpoint_then_resume_is_bit_identical(tmp_path):
    """tools/train.py killed with SIGKILL at a random point after its first
    checkpoint, restarted with --resume: the same final weights and theta0
    as a run never interrupted (a model without random sampling)."""
    config = _toy_config(tmp_path, max_iters=1000)
    subprocess.run(
        _train_cmd(config, tmp_path / 'straight'),
        env=TOOL_ENV,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600)
    work = tmp_path / 'killed'
    kill_after_checkpoint(
        _train_cmd(config, work),
        work,
        delay=random.Random(0).uniform(0.0, 0.5),
        env=TOOL_ENV)
    assert not (work / 'iter_1000.pth').is_file(), 'killed too late'
    subprocess.run(
        _train_cmd(config, work, '--resume'),
        env=TOOL_ENV,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600)
    a = state(tmp_path / 'straight' / 'iter_1000.pth')
    b = state(work / 'iter_1000.pth')
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k]), k
    ta = saved_theta0(a['optimizer'])
    tb = saved_theta0(b['optimizer'])
    assert ta.keys() == tb.keys()
    assert all(torch.equal(ta[k], tb[k]) for k in ta)
