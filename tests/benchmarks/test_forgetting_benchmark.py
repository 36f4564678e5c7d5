"""The forgetting benchmark's digit sets and a tiny run of the command."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from e2e_utils import load_script, table_rows
from pycocotools import mask as mask_utils

from olor_mm.tools.forgetting_runs import signature
from olor_mm_tools.digit_data import (DOWNSTREAM, UPSTREAM, load_digits,
                                      make_digit_sets)
from olor_mm_tools.forgetting_experiment import (first_stage_jobs,
                                                 second_stage_jobs,
                                                 third_stage_jobs)
from olor_mm_tools.forgetting_report import merge_committed


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    out = tmp_path_factory.mktemp('digits')
    return make_digit_sets(
        str(out), img_size=64, num_train=6, num_low=2, num_val=3)


def _load(root, split):
    with open(osp.join(root, f'instances_{split}.json')) as f:
        return json.load(f)


def test_train_and_val_use_disjoint_mnist_images():
    pools = load_digits(seed=0)
    for d in '07':
        train = {a.tobytes() for a in pools['train'][d]}
        val = {a.tobytes() for a in pools['val'][d]}
        assert len(train) + len(val) == 500 and not train & val


@pytest.mark.parametrize('name, classes', [('upstream', UPSTREAM),
                                           ('downstream', DOWNSTREAM),
                                           ('downstream_shift', DOWNSTREAM)])
def test_masks_are_the_strokes_and_boxes_their_extent(digits, name, classes):
    root = digits[name]
    coco = _load(root, 'train')
    assert [c['name'] for c in coco['categories']] == list(classes)
    assert len(coco['images']) == 6 and coco['annotations']
    for ann in coco['annotations']:
        image = next(i for i in coco['images'] if i['id'] == ann['image_id'])
        img = cv2.imread(
            osp.join(root, 'images', image['file_name']),
            cv2.IMREAD_GRAYSCALE).astype(float)
        mask = mask_utils.decode(ann['segmentation']).astype(bool)
        ys, xs = np.nonzero(mask)
        assert ann['bbox'] == [
            xs.min(),
            ys.min(),
            xs.max() + 1 - xs.min(),
            ys.max() + 1 - ys.min()
        ]
        assert ann['area'] == mask.sum()
        # plain: light strokes on a dark ground; shift: dark on light
        ring = cv2.dilate(mask.astype(np.uint8), np.ones(
            (7, 7))).astype(bool) & ~cv2.dilate(
                mask.astype(np.uint8), np.ones((3, 3))).astype(bool)
        contrast = img[mask].mean() - img[ring].mean()
        assert (contrast > 40) if name != 'downstream_shift' else (
            contrast < -40), (name, ann['id'], contrast)


def test_low_data_list_is_a_prefix_of_the_full_one(digits):
    full = _load(digits['downstream'], 'train')
    low = _load(digits['downstream'], 'train_low')
    assert low['images'] == full['images'][:2]
    keep = {i['id'] for i in low['images']}
    assert low['annotations'] == [
        a for a in full['annotations'] if a['image_id'] in keep
    ]


def test_fronts_jobs_and_merge_without_training(tmp_path):
    """The command's arguments make the experiment's jobs (nothing
    trains): every family of the default grid, EWC with its Fisher inputs,
    LP-FT chained to the linear probe; the report merges a committed run
    of a family not run now."""
    forgetting = load_script('benchmarks/forgetting.py', 'forgetting')
    args = forgetting.parse_args([
        '--fronts', '--seeds', '1', '--settings', 'digits 5-9, low-data',
        '--work-dir',
        str(tmp_path)
    ])
    roots = {
        n: str(tmp_path / n)
        for n in ('upstream', 'downstream', 'downstream_shift')
    }
    shared = ('upstream.pth', 'shared.pth', {})
    first = first_stage_jobs(args, roots, shared)
    second = second_stage_jobs(args, roots, shared, first)
    third = third_stage_jobs(args, roots, shared, second)
    families = [j['key']['family'] for j in first + second + third]
    # plain, the probe, OLOR, IW-OLOR and EWC x 3; LP-FT, OLOR + LP-FT,
    # IW-OLOR + LP-FT, WiSE-FT x 3; the LP-FT families x 3 alphas
    assert (len(first), len(second), len(third)) == (11, 6, 9)
    gamma = {'OLOR': 'OLOR gamma=1.0', 'IW-OLOR': 'IW-OLOR gamma=1.0'}
    assert set(families) == {
        gamma.get(f, f)
        for f in forgetting.experiment.DEFAULT_FRONT_FAMILIES
    }
    fisher = [
        j for j in first + second
        if str(j['key']['family']).startswith(('EWC', 'IW-OLOR'))
    ]
    assert len(fisher) == 7 and all(
        j['options']['optim_wrapper.paramwise_cfg.fisher_checkpoint'].endswith(
            'upstream.pth') for j in fisher)
    iw = [j for j in first if j['key']['family'] == 'IW-OLOR gamma=1.0']
    assert [
        j['options']['optim_wrapper.paramwise_cfg.importance_norm'] for j in iw
    ] == ['mean'] * 3
    # every LP-FT family's front interpolates its run from the probe
    for j in third:
        run = next(r for r in second
                   if r['key']['family'] == j['key']['family']
                   and r['key']['param'] == 1.0)
        assert j['source'] == signature(run)
        assert j['finetuned'] == osp.join(run['work_dir'], 'weights.pth')
        assert j['load_from'] == run['load_from']
    probe = next(j for j in first if j['key']['method'] == 'linear probe')
    lpft = next(j for j in second if j['key']['method'] == 'LP-FT')
    assert lpft['source'] == signature(probe)
    assert lpft['load_from'] == osp.join(probe['work_dir'], 'weights.pth')
    committed = tmp_path / 'committed.json'
    old = dict(
        setting='digits 5-9, low-data',
        method='ewc alpha=9.0',
        seed=0,
        family='EWC')
    committed.write_text(json.dumps({'results': [old]}))
    ran = [dict(j['key']) for j in first if j['key']['family'] == 'plain']
    merged, n = merge_committed(ran, str(committed), args.settings)
    assert n == 1 and merged[-1] == dict(old, committed=str(committed))


def test_the_benchmark_command_runs_end_to_end(tmp_path):
    """A tiny run: every stage, the files it writes, the table's rows."""
    forgetting = load_script('benchmarks/forgetting.py', 'forgetting')
    out = tmp_path / 'results' / 'forgetting'
    forgetting.main([
        '--iters', '4', '--pretrain-iters', '4', '--seeds', '1', '--settings',
        'digits 5-9, low-data', '--methods', 'olor', 'l2sp', '--num-train',
        '6', '--num-low', '4', '--num-val', '3', '--jobs', '2', '--data-root',
        str(tmp_path / 'data'), '--work-dir',
        str(tmp_path / 'work'), '--out',
        str(out)
    ])
    text = (tmp_path / 'results' / 'forgetting.md').read_text()
    assert 'Generated by `python benchmarks/forgetting.py --iters 4' in text
    runs = json.loads((tmp_path / 'results' / 'forgetting.json').read_text())
    # a row per method (the setting's 7 columns), its downstream cell the
    # run's score (one seed)
    rows = {r[0]: r for r in table_rows(text) if len(r) == 7}
    for r in runs['results']:
        assert rows[r['method']][1] == f"{r['down_bbox']:.1f} ± 0.0"
    assert sorted(
        (r['method'], r['seed']) for r in runs['results']) == [('l2sp', 0),
                                                               ('olor', 0)]
    for r in runs['results']:
        assert set(r['drift']) >= {
            'backbone', 'backbone.stem', 'backbone.stage4', 'neck'
        }
    with open(str(out) + '.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_fronts_run_end_to_end_and_resume(tmp_path):
    """A tiny --fronts: trainings (EWC, the importance-weighted rollback
    and the linear probe among them), LP-FT from the probe and its
    interpolation from the probe, WiSE-FT of the kept runs, fronts, plots;
    a second call reads every finished run instead of training it again."""
    forgetting = load_script('benchmarks/forgetting.py', 'forgetting')
    out = tmp_path / 'results' / 'forgetting'
    argv = [
        '--fronts', '--iters', '3', '--pretrain-iters', '3', '--seeds', '1',
        '--settings', 'digits 5-9, low-data', '--front-families', 'OLOR',
        'IW-OLOR', 'EWC', 'LP-FT', 'WiSE-FT', 'OLOR + WiSE-FT', '--front-max',
        '0.1', '--front-iw', '0.1', '--front-gamma', '1.0', '--front-wise',
        '0.5', '--front-wise-olor', '0.1', '1.0', '--front-ewc', '1.0',
        '--num-train', '6', '--num-low', '4', '--num-val', '3', '--jobs', '2',
        '--data-root',
        str(tmp_path / 'data'), '--work-dir',
        str(tmp_path / 'work'), '--out',
        str(out)
    ]
    forgetting.main(argv)
    runs = json.loads(
        (tmp_path / 'results' / 'forgetting_fronts.json').read_text())
    methods = sorted(r['method'] for r in runs['results'])
    assert methods == sorted([
        'plain', 'linear probe', 'olor max=0.1 gamma=1.0',
        'iw-olor max=0.1 gamma=1.0 norm=mean', 'ewc alpha=1.0', 'LP-FT',
        'LP-FT alpha=0.5', 'WiSE-FT alpha=0.5', 'OLOR + WiSE-FT alpha=0.5'
    ])
    summary = runs['summary']['digits 5-9, low-data']
    fams = {
        'OLOR gamma=1.0', 'IW-OLOR gamma=1.0', 'WiSE-FT', 'OLOR + WiSE-FT',
        'EWC', 'LP-FT'
    }
    assert set(summary['hypervolume']) == set(summary['on_pooled_front'])
    assert set(summary['hypervolume']) == fams
    assert set(summary['single_points_dominated_by_olor']) == {'linear probe'}
    # LP-FT started from the probe's weights; the probe kept the trunk
    by = {r['method']: r for r in runs['results']}
    lpft = (tmp_path / 'work' / 'runs' / 'digits-5-9_low-data_LP-FT_s0' /
            'config.py').read_text()
    assert 'linear-probe_s0/weights.pth' in lpft
    assert by['linear probe']['drift']['backbone'] == 0.0
    assert by['linear probe']['drift']['neck'] == 0.0
    text = (tmp_path / 'results' / 'forgetting_fronts.md').read_text()
    assert 'vs WiSE-FT: hypervolume difference' in text
    rows = [r[:2] for r in table_rows(text)]
    assert ['EWC', '1.0'] in rows and ['IW-OLOR gamma=1.0', '0.1'] in rows
    # LP-FT is a front: its run (1.0), interpolated from the probe (0.5)
    assert ['LP-FT', '1.0'] in rows and ['LP-FT', '0.5'] in rows
    assert 'On the pooled front' in text
    with open(str(out) + '_fronts_digits-5-9_low-data.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # stopped and restarted: nothing trains again, pre-training included
    pretrained = tmp_path / 'work' / 'upstream' / 'iter_3.pth'
    written = pretrained.stat().st_mtime_ns
    forgetting.main(argv)
    assert pretrained.stat().st_mtime_ns == written
    again = json.loads(
        (tmp_path / 'results' / 'forgetting_fronts.json').read_text())
    assert [r['total_s'] for r in again['results']
            ] == [r['total_s'] for r in runs['results']]


def test_early_drift_is_the_first_logged_drift(tmp_path):
    """early_drift reads RollbackDriftHook's first log line of a run (at
    the logger's interval), and the fronts table averages it over seeds
    ('-' for runs without it)."""
    from olor_mm.tools.forgetting_runs import early_drift
    from olor_mm.tools.fronts import _early
    vis = tmp_path / 'run' / '20261129_000000' / 'vis_data'
    vis.mkdir(parents=True)
    rows = [
        dict(iter=10, loss=1.0), {
            'iter': 50,
            'drift.backbone.stem': 0.1,
            'drift.backbone.stage4': 0.3
        }, {
            'iter': 100,
            'drift.backbone.stem': 0.2,
            'drift.backbone.stage4': 0.6
        }
    ]
    (vis / 'scalars.json').write_text(''.join(
        json.dumps(r) + '\n' for r in rows))
    first = early_drift(str(tmp_path / 'run'))
    assert first == {'backbone.stem': 0.1, 'backbone.stage4': 0.3, 'iter': 50}
    assert early_drift(str(tmp_path / 'wise')) is None
    # a 32-image set at batch 4 also logs at the end of each epoch
    # (iteration 8): the drift is read at the logger's interval (50, from
    # the config MMEngine dumps beside the scalars), as for a full set
    vis = tmp_path / 'low' / '20261130_000000' / 'vis_data'
    vis.mkdir(parents=True)
    (vis / '20261130_000000.py').write_text(
        "default_hooks = dict(logger=dict(type='LoggerHook', interval=50))\n")
    epoch_end = {'iter': 8, 'drift.backbone.stem': 0.01}
    (vis / 'scalars.json').write_text(''.join(
        json.dumps(r) + '\n' for r in [epoch_end] + rows[1:]))
    assert early_drift(str(tmp_path / 'low')) == first
    # a run shorter than the interval: its first line
    (vis / 'scalars.json').write_text(json.dumps(epoch_end) + '\n')
    assert early_drift(str(tmp_path / 'low')) == {
        'backbone.stem': 0.01,
        'iter': 8
    }
    other = {'backbone.stem': 0.3, 'backbone.stage4': 0.5}
    assert _early([{
        'early_drift': first
    }, {
        'early_drift': other
    }]) == '0.200 / 0.400'
    assert _early([{'early_drift': None}]) == '-'
