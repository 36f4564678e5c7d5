"""olor_mm.tools.forgetting: any pair of configs, end to end on
the demo's tiny Mask R-CNN; its suggestion rule by hand."""
import contextlib
import io
import json
import os.path as osp

import pytest
import torch
from e2e_utils import DEMO, demo_sets, pretrain, table_rows

from olor_mm.tools.experiment import data_options  # noqa: E402
from olor_mm.tools.experiment import schedule_options

UPSTREAM = osp.join(DEMO, 'mask-rcnn_r18-tiny_demo-upstream.py')
OLOR = osp.join(DEMO, 'mask-rcnn_r18-tiny_demo-downstream_olor.py')
PLAIN = osp.join(DEMO, 'mask-rcnn_r18-tiny_demo-downstream_plain.py')
CLASS_SPECIFIC = ('roi_head.bbox_head.fc_cls.', 'roi_head.bbox_head.fc_reg.',
                  'roi_head.mask_head.conv_logits.')
TRUNK = ('backbone.', 'neck.', 'rpn_head.', 'roi_head.bbox_head.shared_fcs.',
         'roi_head.mask_head.convs.', 'roi_head.mask_head.upsample.')


def _tool():
    """The tool's module (``python -m olor_mm.tools.forgetting``;
    tools/analysis_tools/forgetting.py in a checkout)."""
    from olor_mm.tools import forgetting
    return forgetting


def _cli(options):
    return [f'{k}={v}' for k, v in options.items()]


@pytest.fixture(scope='module')
def sweep(tmp_path_factory):
    """olor and ewc (one grid point each) and LP-FT, one seed, 3
    iterations; then the same command again."""
    data = demo_sets(tmp_path_factory, 'instance')
    up_opts = _cli(dict(data_options(data['upstream']), **schedule_options(2)))
    ckpt = pretrain(tmp_path_factory, UPSTREAM, up_opts, 2)
    down = dict(
        data_options(data['downstream']), **schedule_options(3), **{
            'train_dataloader.batch_size': 2,
            'param_scheduler.0.end': 1
        })
    work = tmp_path_factory.mktemp('forgetting')
    argv = [
        '--upstream-config', UPSTREAM, '--upstream-checkpoint', ckpt,
        '--downstream-config', OLOR, '--work-dir',
        str(work), '--methods', 'olor', 'ewc', 'lpft', '--grid', 'olor=0.1',
        'ewc=1', '--fisher-batches', '1', '--cfg-options', *_cli(down),
        '--upstream-cfg-options', *up_opts
    ]
    tool = _tool()
    planned = io.StringIO()
    with contextlib.redirect_stdout(planned):
        tool.main(argv + ['--plan', '--plan-iters', '3'])
    tool.main(argv)
    first = json.loads((work / 'forgetting.json').read_text())
    replanned = io.StringIO()
    with contextlib.redirect_stdout(replanned):
        tool.main(argv + ['--plan'])
    logs = {
        p: osp.getmtime(p)
        for p in map(str, work.glob('runs/*/train.log'))
    }
    tool.main(argv)  # a stopped / repeated sweep trains nothing
    second = json.loads((work / 'forgetting.json').read_text())
    return dict(
        work=work,
        ckpt=ckpt,
        first=first,
        second=second,
        logs=logs,
        plan=planned.getvalue(),
        replan=replanned.getvalue(),
        text=(work / 'forgetting.md').read_text())


def test_every_method_ran_and_was_scored_twice(sweep):
    runs = {r['method']: r for r in sweep['first']['results']}
    # plain (the zero end of OLOR's and EWC's fronts) and the probe LP-FT
    # starts from are added
    assert set(runs) == {'plain', 'frozen', 'olor_0.1', 'ewc_1', 'lpft'}
    up = torch.load(sweep['ckpt'], weights_only=False)['state_dict']
    # shared = the upstream tensors the fine-tuned model has with their
    # shape: all but the class-specific layers (3 upstream classes, 4 new)
    expected = len([k for k in up if not k.startswith(CLASS_SPECIFIC)])
    for r in runs.values():
        assert r['shared_tensors'] == expected
        assert 'coco/bbox_mAP' in r['down_metrics']
        assert 'coco/bbox_mAP' in r['up_metrics']
        assert r['down_score'] == pytest.approx(
            100 * r['down_metrics']['coco/bbox_mAP'])
    # the run configs are D with one change each
    cfgs = {
        r['method']: (sweep['work'] / 'runs' / f"{r['method']}_s0" /
                      'config.py').read_text()
        for r in runs.values()
    }
    assert "method='ewc'" in cfgs['ewc_1']
    assert 'rollback_max=0.1' in cfgs['olor_0.1']
    assert 'rollback_max=0.0' in cfgs['plain']


def test_lp_stage_leaves_the_trunk_bit_identical(sweep):
    probe = torch.load(
        sweep['work'] / 'runs' / 'frozen_s0' / 'weights.pth',
        weights_only=False)['state_dict']
    up = torch.load(sweep['ckpt'], weights_only=False)['state_dict']
    trunk = [k for k in up if k.startswith(TRUNK)]
    assert len(trunk) > 100
    for k in trunk:
        assert torch.equal(probe[k], up[k]), k
    # LP-FT's second stage starts from the probe and trains the trunk
    lpft = sweep['work'] / 'runs' / 'lpft_s0' / 'config.py'
    assert 'frozen_s0/weights.pth' in lpft.read_text()


def test_plan_lists_the_runs_and_estimates_their_time(sweep):
    """--plan: every run of the sweep with its method, strength and
    start, and an estimate from one short timing run, within 2x of what
    the runs then took (their result.json); after the sweep, nothing is
    left to run."""
    import re
    plan = sweep['plan']
    rows = {r[0]: r for r in table_rows(plan)[1:]}  # [0]: the header
    assert set(rows) == {'plain', 'frozen', 'olor_0.1', 'ewc_1', 'lpft'}
    assert rows['olor_0.1'][1:3] == ['OLOR', '0.1']
    assert rows['lpft'][4].endswith('frozen_s0/weights.pth')
    found = re.search(
        r'estimate: 5 runs to go \(5 trainings\), ([\d.]+) '
        r'run-minutes', plan)
    assert found, plan
    estimate = 60 * float(found.group(1))
    took = sum(r['total_s'] for r in sweep['first']['results'])
    assert took / 2 <= estimate <= 2 * took, (estimate, took)
    assert 'nothing left to run' in sweep['replan']


def test_report_and_resume(sweep):
    text = sweep['text']
    rows = [r[:2] for r in table_rows(text)]
    assert ['OLOR', '0.1'] in rows and ['EWC', '1.0'] in rows
    assert ['LP-FT', '-'] in rows and ['linear probe', '-'] in rows
    # plain, asked for or added as the zero end of the fronts, is one row
    # under its own name, not OLOR's or EWC's 0.0
    assert rows.count(['plain', '-']) == 1
    assert ['OLOR', '0.0'] not in rows and ['EWC', '0.0'] not in rows
    assert '## Recommended rollback_max' in text
    assert (sweep['work'] / 'forgetting_downstream.png').read_bytes()[:4] \
        == b'\x89PNG'
    # the second call read every result: nothing trained again
    assert [r['total_s'] for r in sweep['second']['results']
            ] == [r['total_s'] for r in sweep['first']['results']]
    for path, mtime in sweep['logs'].items():
        assert osp.getmtime(path) == mtime, path


def test_suggestion_rule_by_hand():
    tool = _tool()

    def r(family, param, down, up, stem, seed=0):
        return dict(
            family=family,
            param=param,
            seed=seed,
            down_score=down,
            up_score=up,
            early_drift={
                'backbone.stem': stem,
                'backbone.stage4': 1.0
            })

    results = [
        r('plain', None, 70.0, 30.0, 0.100),
        r('OLOR', 0.01, 69.5, 40.0, 0.085),
        r('OLOR', 0.03, 69.2, 45.0, 0.060),
        r('OLOR', 0.1, 66.0, 60.0, 0.030),
    ]
    s = tool.suggest(results, 0.01, tolerance=1.0)
    assert s['from_front'] == 0.03  # 0.1 loses 4 points downstream
    assert s['early_drift_ratio'] == pytest.approx({
        0.01: 0.85,
        0.03: 0.6,
        0.1: 0.3
    })
    assert s['from_early_drift'] == 0.03
    assert s['regime'][0.1] == 'keeps the old task'
    assert tool.recommend(s)[0] == 0.03
    wide = tool.suggest(results, 0.01, tolerance=5.0)
    assert wide['from_front'] == 0.1
    # the two rules disagree: one recommendation, the measured front's,
    # and the reason names the other
    value, reason = tool.recommend(wide)
    assert value == 0.1 and 'would have picked 0.03' in reason
    # no grid value within the tolerance: the early-drift rule says where
    # to measure
    tight = tool.suggest(results, 0.01, tolerance=0.1)
    assert tight['from_front'] is None
    value, reason = tool.recommend(tight)
    assert value == 0.03 and 'measure values around it' in reason


def test_recommendation_takes_the_importance_weighted_rollback():
    """Within 1 point of plain's 70.0 downstream, OLOR's best keeps 45.0
    (0.03); the importance-weighted rollback at 0.3 keeps 52.0 at 69.4
    (its 1.0 keeps more but loses 6 points): it is recommended, with
    importance='fisher'. Where it keeps less, OLOR's value is."""
    tool = _tool()

    def r(family, param, down, up):
        return dict(
            family=family, param=param, seed=0, down_score=down, up_score=up)

    results = [
        r('plain', None, 70.0, 30.0),
        r('OLOR', 0.03, 69.2, 45.0),
        r('OLOR', 0.1, 66.0, 60.0),
        r('IW-OLOR', 0.1, 69.8, 38.0),
        r('IW-OLOR', 0.3, 69.4, 52.0),
        r('IW-OLOR', 1.0, 64.0, 70.0),
    ]
    s = tool.suggest(results, 0.01, tolerance=1.0)
    assert (s['from_front'], s['iw_from_front']) == (0.03, 0.3)
    value, reason = tool.recommend(s)
    assert value == 0.3 and s['recommended_importance'] == 'fisher'
    assert 'retains the most, 52.0' in reason and 'retains 45.0' in reason
    weaker = [x for x in results if x['param'] != 0.3]
    s = tool.suggest(weaker, 0.01, tolerance=1.0)
    assert tool.recommend(s)[0] == 0.03
    assert s['recommended_importance'] is None


def test_bad_inputs_are_named(tmp_path):
    tool = _tool()
    base = [
        '--upstream-config', UPSTREAM, '--upstream-checkpoint', 'u.pth',
        '--work-dir',
        str(tmp_path)
    ]
    with pytest.raises(SystemExit, match='methods with a grid'):
        tool.parse_args(base + ['--downstream-config', OLOR, '--grid', 'x=1'])
    with pytest.raises(SystemExit, match='numbers separated by commas'):
        tool.parse_args(base +
                        ['--downstream-config', OLOR, '--grid', 'olor=a'])
    with pytest.raises(SystemExit, match='LayerwiseRollbackConstructor'):
        tool.main(base + ['--downstream-config', PLAIN])
