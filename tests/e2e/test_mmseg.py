"""tools/train.py end to end on tiny semantic data with the UperNet pair."""
import os.path as osp

import torch
from e2e_utils import DEMO, demo_fixtures, drift
from e2e_utils import options as _base_options
from e2e_utils import scalars, state, train

from olor_mm.core.theta0 import saved_theta0

UPSTREAM = osp.join(DEMO, 'upernet_r18-tiny_demo-upstream.py')
OLOR = osp.join(DEMO, 'upernet_r18-tiny_demo-downstream_olor.py')
PLAIN = osp.join(DEMO, 'upernet_r18-tiny_demo-downstream_plain.py')


def _options(data_root, iters):
    return _base_options(
        data_root, iters, coco=False) + ['param_scheduler.0.start_factor=1.0']


data, pretrained = demo_fixtures('semseg', UPSTREAM, _options)


def test_olor_upernet_trains_evaluates_and_pulls_back(data, pretrained,
                                                      tmp_path):
    opts = _options(data['downstream'], 6) + [f'load_from={pretrained}']
    train(
        OLOR, tmp_path / 'olor', opts + [
            'optim_wrapper.paramwise_cfg.rollback_max=0.5',
            'optim_wrapper.paramwise_cfg.scale_with_lr=False'
        ])
    train(PLAIN, tmp_path / 'plain', opts)
    ckpt = tmp_path / 'olor' / 'iter_6.pth'
    assert ckpt.is_file()
    rows = scalars(tmp_path / 'olor')
    assert [r['iter'] for r in rows if 'decode.loss_ce' in r] == \
        [1, 2, 3, 4, 5, 6]
    assert any('mIoU' in r for r in rows)  # evaluated at the end
    theta0 = saved_theta0(state(ckpt)['optimizer'])
    pre = state(pretrained)['state_dict']
    assert torch.equal(theta0[0], pre['backbone.stem.0.weight'])
    olor = drift(ckpt, pretrained, 'backbone.')
    plain = drift(tmp_path / 'plain' / 'iter_6.pth', pretrained, 'backbone.')
    assert olor < 0.8 * plain, (olor, plain)


def test_resume_restores_theta0(data, pretrained, tmp_path):
    work_dir = tmp_path / 'resume'
    opts = [f'load_from={pretrained}']
    train(OLOR, work_dir, _options(data['downstream'], 3) + opts)
    log = train(OLOR, work_dir, _options(data['downstream'], 6), '--resume')
    assert 'resumed' in log.lower()
    first = saved_theta0(state(work_dir / 'iter_3.pth')['optimizer'])
    final = saved_theta0(state(work_dir / 'iter_6.pth')['optimizer'])
    assert set(first) == set(final)
    assert all(torch.equal(first[k], final[k]) for k in first)
    pre = state(pretrained)['state_dict']
    assert torch.equal(final[0], pre['backbone.stem.0.weight'])
    iters = [r['iter'] for r in scalars(work_dir) if 'decode.loss_ce' in r]
    assert iters == [1, 2, 3, 4, 5, 6]


def test_tools_test_shows_and_writes_predictions_like_mmseg(
        data, pretrained, tmp_path):
    """MMSegmentation's own test.py semantics: --show-dir paints into the
    visualizer's save_dir, --out writes the predicted label maps."""
    import glob
    import subprocess
    import sys

    from e2e_utils import ROOT
    root = data['upstream']
    show, out = tmp_path / 'show', tmp_path / 'pred'
    run = subprocess.run(
        [
            sys.executable,
            osp.join(ROOT, 'tools', 'test.py'),
            UPSTREAM,
            pretrained,
            '--work-dir',
            str(tmp_path / 'work'),
            '--show-dir',
            str(show),
            '--out',
            str(out),
            '--cfg-options',
            f'test_dataloader.dataset.data_root={root}/',
            # SegVisualizationHook paints every `interval` (50) images and
            # reads runner.iter, which builds the train loop (its data too)
            'default_hooks.visualization.interval=1',
            f'train_dataloader.dataset.data_root={root}/'
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert 'mIoU' in run.stdout + run.stderr
    painted = glob.glob(str(show / '**' / '*.png'), recursive=True)
    labels = glob.glob(str(out / '*.png'))
    assert len(labels) == 4 and len(painted) >= 4
