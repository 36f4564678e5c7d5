"""tools/train.py end to end on tiny demo data, as a user runs it.

Each run is a subprocess on a handful of 128 px images for a few
iterations; nothing is downloaded.
"""
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
from e2e_utils import (DEMO, ROOT, demo_fixtures, drift, kill_after_checkpoint,
                       options, scalars, state, train, train_cmd,
                       upstream_analyzer)

from olor_mm.core.theta0 import saved_theta0

UPSTREAM = osp.join(DEMO, 'mask-rcnn_r18-tiny_demo-upstream.py')
OLOR = osp.join(DEMO, 'mask-rcnn_r18-tiny_demo-downstream_olor.py')
PLAIN = osp.join(DEMO, 'mask-rcnn_r18-tiny_demo-downstream_plain.py')
FASTER = osp.join(DEMO, 'faster-rcnn_r18-tiny_demo-downstream_olor.py')

data, pretrained = demo_fixtures('instance', UPSTREAM, options)


@pytest.fixture(scope='module')
def runs(data, pretrained, tmp_path_factory):
    """OLOR (rollback_max set by --cfg-options) and plain fine-tuning of the
    demo Mask R-CNN under one seed, 6 iterations: (work dir, its log)."""
    root = tmp_path_factory.mktemp('finetune')
    opts = options(data['downstream'], 6) + [
        f'load_from={pretrained}', 'param_scheduler.0.start_factor=1.0',
        'custom_hooks.0.interval=3'
    ]  # the configs' RollbackDriftHook
    log = train(
        OLOR, root / 'olor', opts + [
            'optim_wrapper.paramwise_cfg.rollback_max=0.5',
            'optim_wrapper.paramwise_cfg.scale_with_lr=False'
        ])
    train(PLAIN, root / 'plain', opts)
    return dict(olor=root / 'olor', plain=root / 'plain', log=log)


def test_cfg_options_reach_the_constructor(runs):
    """The override reached the constructor: lam of layer 0 is 0.5."""
    log = runs['log']
    assert 'OLOR layer-wise rollback' in log
    table = log[log.index('OLOR layer-wise rollback'):].splitlines()
    assert table[2].split()[:2] == ['0', '0.500000']


def test_olor_mask_rcnn_trains_logs_and_evaluates(runs):
    assert (runs['olor'] / 'iter_6.pth').is_file()
    rows = scalars(runs['olor'])
    losses = [r for r in rows if 'loss_mask' in r]
    assert [r['iter'] for r in losses] == [1, 2, 3, 4, 5, 6]
    assert any('coco/segm_mAP' in r for r in rows)  # evaluated at the end


def test_theta0_in_the_checkpoint_is_the_pretrained_backbone(runs, pretrained):
    saved = state(runs['olor'] / 'iter_6.pth')
    theta0 = saved_theta0(saved['optimizer'])
    pre = state(pretrained)['state_dict']
    assert torch.equal(theta0[0], pre['backbone.conv1.weight'])


def test_olor_pulls_the_backbone_back(runs, pretrained):
    olor_drift = drift(runs['olor'] / 'iter_6.pth', pretrained, 'backbone.')
    plain_drift = drift(runs['plain'] / 'iter_6.pth', pretrained, 'backbone.')
    assert olor_drift < 0.8 * plain_drift, (olor_drift, plain_drift)


def test_drift_hook_logs_what_the_checkpoints_say(runs, pretrained):
    """The drift hook computed at iterations 3 and 6 (the LoggerHook, every
    iteration here, repeats the last value in between); the value at 6 is
    what the checkpoints say."""
    from mmengine.config import Config

    from olor_mm.core.drift import state_dict_drift
    from olor_mm.tools.pretrained import build_model
    model = build_model(Config.fromfile(OLOR))  # names the groups
    pre = state(pretrained)['state_dict']
    for run in ('olor', 'plain'):
        logged = [
            r for r in scalars(runs[run]) if 'drift.backbone.stage4' in r
        ]
        assert [r['step'] for r in logged] == [3, 4, 5, 6]
        assert logged[0]['drift.backbone.stage4'] == logged[2][
            'drift.backbone.stage4'] != logged[3]['drift.backbone.stage4']
        direct = state_dict_drift(
            state(runs[run] / 'iter_6.pth')['state_dict'], pre, model)
        for group in ('stem', 'stage1', 'stage2', 'stage3', 'stage4'):
            assert logged[-1][f'drift.backbone.{group}'] == pytest.approx(
                direct[f'backbone.{group}'], rel=1e-5), (run, group)
    assert logged_lam(runs['olor']) == pytest.approx(0.5)
    assert logged_lam(runs['plain']) is None


def test_new_class_specific_layers_train_as_in_plain(runs):
    """The new class-specific layers are not rolled back: they train
    alike."""
    groups = state(runs['olor'] / 'iter_6.pth')['optimizer']['param_groups']
    new = [g for g in groups if g['layer_id'] is None]
    assert new and all(g['rollback'] == 0.0 for g in new)
    assert any(g['rollback'] == 0.5 for g in groups)
    cls_olor = [
        r['loss_cls'] for r in scalars(runs['olor']) if 'loss_mask' in r
    ]
    cls_plain = [
        r['loss_cls'] for r in scalars(runs['plain']) if 'loss_cls' in r
    ]
    assert len(cls_plain) == 6
    assert cls_olor[0] == pytest.approx(cls_plain[0], rel=1e-4)
    assert cls_olor[-1] < cls_olor[0] and cls_plain[-1] < cls_plain[0]
    assert cls_olor[-1] == pytest.approx(cls_plain[-1], rel=0.1)


def upstream_train_py(package):
    """The tools/train.py that MMDetection / MMSegmentation install."""
    module = __import__(package)
    path = osp.join(osp.dirname(module.__file__), '.mim', 'tools', 'train.py')
    assert osp.isfile(path), path
    return path


def test_upstream_mmdet_train_py_rolls_back(data, pretrained, tmp_path):
    """MMDetection's own tools/train.py on the shipped spelling, the plain
    OptimWrapper (its --amp rewrites it to AmpOptimWrapper): the
    constructor attached the rollback, so it rolls back."""
    opts = options(data['downstream'], 4) + [
        f'load_from={pretrained}', 'param_scheduler.0.start_factor=1.0'
    ]
    runs = {
        'olor': (OLOR, [
            'optim_wrapper.paramwise_cfg.scale_with_lr=False',
            'optim_wrapper.paramwise_cfg.rollback_max=0.5'
        ]),
        'plain': (PLAIN, []),
    }
    for run, (config, extra) in runs.items():
        out = subprocess.run([
            sys.executable,
            upstream_train_py('mmdet'), config, '--work-dir',
            str(tmp_path / run), '--cfg-options', *opts, *extra
        ],
                             cwd=ROOT,
                             capture_output=True,
                             text=True,
                             timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ckpt = tmp_path / 'olor' / 'iter_4.pth'
    optim = state(ckpt)['optimizer']
    pre = state(pretrained)['state_dict']
    assert torch.equal(saved_theta0(optim)[0], pre['backbone.conv1.weight'])
    assert any(g['rollback'] == 0.5 for g in optim['param_groups'])
    olor_drift = drift(ckpt, pretrained, 'backbone.')
    plain_drift = drift(tmp_path / 'plain' / 'iter_4.pth', pretrained,
                        'backbone.')
    assert olor_drift < 0.8 * plain_drift, (olor_drift, plain_drift)
    assert logged_lam(tmp_path / 'olor') == pytest.approx(0.5)


def readme_block(marker):
    """The README's fenced Python block holding ``marker``, as printed."""
    import re
    text = open(osp.join(ROOT, 'README.md')).read()
    for block in re.findall(r'```python\n(.*?)```', text, re.S):
        if marker in block:
            return block
    raise AssertionError(f'no README block holds {marker!r}')


def test_readme_inheriting_config_under_upstream_train_py(
        data, pretrained, tmp_path, monkeypatch):
    """The README's "In a config" inheriting block, as printed but for its
    base (the demo's tiny Mask R-CNN in place of the R50 one, which trains
    for minutes on a CPU), in a directory of the user's, through
    MMDetection's own tools/train.py: it parses, rolls back (the layer
    table and the drift in the log) and its json log is read by
    MMDetection's analyze_logs.py with every logged point."""
    block = readme_block('from olor_mm.configs.olor import')
    first, rest = block.split('\n', 1)
    assert first.startswith("_base_ = 'mmdet::mask_rcnn/")
    user = tmp_path / 'my_project'
    user.mkdir()
    (user / 'my_config.py').write_text(f'_base_ = {PLAIN!r}\n' + rest)
    work = tmp_path / 'run'
    opts = options(data['downstream'], 4) + [f'load_from={pretrained}']
    out = subprocess.run([
        sys.executable,
        upstream_train_py('mmdet'), 'my_config.py', '--work-dir',
        str(work), '--cfg-options', *opts
    ],
                         cwd=user,
                         capture_output=True,
                         text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (log, ) = glob.glob(str(work / '*' / '*.log'))
    text = open(log).read()
    assert 'OLOR layer-wise rollback' in text
    assert 'RollbackDriftHook [4] drift.backbone.stem: ' in text
    optim = state(work / 'iter_4.pth')['optimizer']
    assert torch.equal(
        saved_theta0(optim)[0],
        state(pretrained)['state_dict']['backbone.conv1.weight'])
    (json_log, ) = glob.glob(str(work / '*' / 'vis_data' / '2*.json'))
    analyzer = upstream_analyzer('mmdet', monkeypatch)
    series = analyzer.load_json_logs([json_log])[0][1]
    counts = {
        k: len(series[k])
        for k in ('step', 'loss', 'drift.backbone.stem',
                  'lam_eff.backbone.stem')
    }
    assert counts == dict.fromkeys(counts, 4), counts  # logged every iter
    assert series['step'] == [1, 2, 3, 4]


def logged_lam(work_dir):
    """The last lam_eff of the stem the drift hook logged, or None."""
    rows = [r for r in scalars(work_dir) if 'lam_eff.backbone.stem' in r]
    return rows[-1]['lam_eff.backbone.stem'] if rows else None


def test_faster_rcnn_variant(data, pretrained, tmp_path):
    opts = options(data['downstream'], 3) + [f'load_from={pretrained}']
    train(FASTER, tmp_path / 'faster', opts)
    assert (tmp_path / 'faster' / 'iter_3.pth').is_file()
    rows = scalars(tmp_path / 'faster')
    assert any('coco/bbox_mAP' in r for r in rows)
    assert not any('loss_mask' in r for r in rows)


def test_resume_after_interruption(data, pretrained, tmp_path):
    work_dir = tmp_path / 'resume'
    opts = options(
        data['downstream'], 16, ckpt_interval=3) + [f'load_from={pretrained}']
    # interrupted, mid-run
    kill_after_checkpoint(train_cmd(OLOR, work_dir, opts), work_dir)
    first = sorted(glob.glob(str(work_dir / 'iter_*.pth')))
    assert first and not (work_dir / 'iter_16.pth').is_file()
    with open(work_dir / 'last_checkpoint') as f:
        interrupted_at = f.read().strip()

    log = train(OLOR, work_dir, opts, '--resume')
    assert f'Load checkpoint from {interrupted_at}' in log or \
        'resumed' in log.lower()
    final = work_dir / 'iter_16.pth'
    assert final.is_file()
    # theta0 was restored, not re-taken from the resumed weights
    t_final = saved_theta0(state(final)['optimizer'])
    t_first = saved_theta0(state(interrupted_at)['optimizer'])
    assert set(t_final) == set(t_first)
    assert all(torch.equal(t_final[k], t_first[k]) for k in t_final)
    pre = state(pretrained)['state_dict']
    assert torch.equal(t_final[0], pre['backbone.conv1.weight'])
    resumed = state(interrupted_at)['state_dict']['backbone.conv1.weight']
    assert not torch.equal(resumed, pre['backbone.conv1.weight'])
    iters = [r['iter'] for r in scalars(work_dir) if 'loss' in r]
    assert iters[-1] == 16


def test_amp_on_cpu_runs_olor_in_bfloat16(data, pretrained, tmp_path):
    opts = options(data['downstream'], 2) + [f'load_from={pretrained}']
    log = train(OLOR, tmp_path / 'amp', opts, '--amp')
    assert (tmp_path / 'amp' / 'iter_2.pth').is_file()
    optim = state(tmp_path / 'amp' / 'iter_2.pth')['optimizer']
    assert 'loss_scaler' in optim and 'olor_rollback' in optim
    assert 'AmpOLOROptimWrapper' in log


def test_amp_on_cpu_refuses_the_plain_wrapper(data, tmp_path):
    out = subprocess.run(
        train_cmd(PLAIN, tmp_path / 'amp_plain',
                  options(data['downstream'], 2), '--amp'),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300)
    assert out.returncode != 0
    assert '--amp without a GPU' in out.stderr


def test_tools_test_evaluates_a_checkpoint(data, pretrained, tmp_path):
    root = data['upstream']
    out = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'test.py'), UPSTREAM, pretrained, '--work-dir',
        str(tmp_path), '--out',
        str(tmp_path / 'preds.pkl'), '--cfg-options',
        f'test_dataloader.dataset.data_root={root}/',
        f'test_evaluator.ann_file={root}/instances_val.json'
    ],
                         cwd=ROOT,
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'coco/segm_mAP' in out.stdout + out.stderr
    assert (tmp_path / 'preds.pkl').is_file()
