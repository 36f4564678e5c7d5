"""Drift groups, RollbackDriftHook against a direct computation, plot tool;
the hook's bad arguments (``BAD_INPUTS``)."""
import glob
import json

import pytest
import torch
from bad_input import bad_input_cases, check_bad_input
from e2e_utils import upstream_analyzer
from mmengine.runner import Runner
from toy import (TOY_LAYERS, olor_wrapper_cfg, resumed_runner, runner_cfg,
                 toy_runner)

import olor_mm  # noqa: F401
from olor_mm.core.drift import drift_groups, relative_drift
from olor_mm.tools import plot_drift


def _model(backbone):
    """A detector-shaped model: ``backbone`` and a conv ``neck``."""
    from mmdet.registry import MODELS as DET
    from mmengine.registry import DefaultScope
    model = torch.nn.Module()
    with DefaultScope.overwrite_default_scope('mmdet'):
        model.backbone = DET.build(backbone)
    model.neck = torch.nn.Conv2d(2, 2, 1)
    return model


def group_sizes(model, names):
    return {k: len(v) for k, v in drift_groups(model, names).items()}


def test_groups_follow_the_stages():
    resnet = _model(dict(type='ResNet', depth=18))
    assert group_sizes(resnet, [
        'backbone.conv1.weight', 'backbone.bn1.weight',
        'backbone.layer1.0.conv1.weight', 'backbone.layer2.1.bn2.bias',
        'neck.weight'
    ]) == {
        'backbone.stem': 2,
        'backbone.stage1': 1,
        'backbone.stage2': 1,
        'neck': 1
    }
    swin = _model(
        dict(
            type='SwinTransformer',
            embed_dims=16,
            depths=(1, 1, 1, 1),
            num_heads=(1, 1, 1, 1)))
    assert group_sizes(swin, [
        'backbone.patch_embed.projection.weight',
        'backbone.stages.0.blocks.0.attn.w_msa.qkv.weight',
        'backbone.norm0.weight', 'backbone.stages.2.downsample.norm.bias',
        'backbone.norm3.bias'
    ]) == {
        'backbone.stem': 1,
        'backbone.stage1': 2,
        'backbone.stage3': 1,
        'backbone.stage4': 1
    }


def test_relative_drift_by_hand():
    theta0 = dict(a=torch.tensor([3.0, 0.0]), b=torch.tensor([0.0, 4.0]))
    now = dict(a=torch.tensor([3.0, 1.0]), b=torch.tensor([0.0, 4.0]))
    # ||(0, 1, 0, 0)|| / ||(3, 0, 0, 4)|| = 1 / 5
    assert relative_drift(now, theta0, dict(g=['a', 'b'])) == dict(g=0.2)


HOOKS = dict(
    logger=dict(type='LoggerHook', interval=2),
    checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False))


def _train(tmp_path, name, wrapper, path, max_iters=6):
    runner = toy_runner(
        tmp_path / name,
        wrapper,
        max_iters=max_iters,
        load_from=path,
        custom_hooks=[dict(type='RollbackDriftHook', interval=2)],
        default_hooks=HOOKS)
    runner.train()
    return runner


def _direct(runner, pretrained, stage_names):
    """||theta - theta0|| / ||theta0|| over the named tensors, in float64."""
    params = {n: p.detach() for n, p in runner.model.named_parameters()}
    num = sum(
        float((params[n].double() - pretrained[n].double()).pow(2).sum())
        for n in stage_names)
    den = sum(float(pretrained[n].double().pow(2).sum()) for n in stage_names)
    return (num / den)**0.5


STAGES = {
    'backbone.stem':
    ['backbone.conv1.weight', 'backbone.bn1.weight', 'backbone.bn1.bias'],
    'backbone.stage1':
    ['backbone.layer1.0.0.weight', 'backbone.layer1.0.0.bias'],
    'backbone.stage2':
    [f'backbone.layer2.{j}.0.{k}' for j in (0, 1) for k in ('weight', 'bias')],
}


def test_hook_logs_drift_and_lam_eff_of_olor(tmp_path, toy_pretrained):
    path, pretrained = toy_pretrained
    wrapper = olor_wrapper_cfg(
        dict(type='SGD', lr=0.1),
        rollback_max=0.2,
        rollback_min=0.0,
        layer_patterns=TOY_LAYERS)
    runner = _train(tmp_path, 'olor', wrapper, path)
    hub = runner.message_hub
    for group, names in STAGES.items():
        logged = hub.get_scalar(f'train/drift.{group}').current()
        assert logged == pytest.approx(
            _direct(runner, pretrained, names), rel=1e-6), group
        assert logged > 0
    # layers 0..3 (stem, layer1.0, layer2.0, layer2.1) of n = 3, no
    # scheduler: lam_eff = lam_i = 0.2 * (1 - i / 3); the stage's mean is
    # parameter-weighted, and layer2's two blocks have equal sizes.
    lam = {
        'backbone.stem': 0.2,
        'backbone.stage1': 0.2 * 2 / 3,
        'backbone.stage2': (0.2 / 3 + 0.0) / 2
    }
    for group, value in lam.items():
        assert hub.get_scalar(f'train/lam_eff.{group}').current() == \
            pytest.approx(value, rel=1e-12), group
    # the text log's scalars.json holds them at the logged iterations
    entries = _scalars(tmp_path / 'olor')
    assert [e['step'] for e in entries
            if 'drift.backbone.stem' in e] == [2, 4, 6]


def test_hook_measures_plain_runs_from_the_loaded_weights(
        tmp_path, toy_pretrained):
    path, pretrained = toy_pretrained
    plain = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    runner = _train(tmp_path, 'plain', plain, path)
    hub = runner.message_hub
    for group, names in STAGES.items():
        assert hub.get_scalar(f'train/drift.{group}').current() == \
            pytest.approx(_direct(runner, pretrained, names), rel=1e-6)
    assert 'train/lam_eff.backbone.stem' not in hub.log_scalars


def test_plot_drift_overlays_runs(tmp_path, toy_pretrained):
    path, _ = toy_pretrained
    wrapper = olor_wrapper_cfg(
        dict(type='SGD', lr=0.1), rollback_max=0.2, layer_patterns=TOY_LAYERS)
    _train(tmp_path, 'olor', wrapper, path)
    _train(tmp_path, 'plain',
           dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)), path)
    out = str(tmp_path / 'drift.png')
    plot_drift.main([
        str(tmp_path / 'olor'),
        str(tmp_path / 'plain'), '--legend', 'OLOR', 'plain', '--out', out,
        '--lam'
    ])
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    series = plot_drift.load_series(
        plot_drift.find_scalars(str(tmp_path / 'olor')))
    assert series['drift.backbone.stage2'][0] == [2, 4, 6]


def test_unknown_prefix_fails_at_train_start(tmp_path):
    runner = toy_runner(
        tmp_path / 'bad',
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[dict(type='RollbackDriftHook', prefixes=('encoder', ))])
    with pytest.raises(ValueError, match='RollbackDriftHook.prefixes'):
        runner.train()


def test_the_hook_only_reads(tmp_path, toy_pretrained):
    """Training with the hook is bit for bit training without it."""
    path, _ = toy_pretrained
    wrapper = olor_wrapper_cfg(
        dict(type='SGD', lr=0.1, momentum=0.9),
        rollback_max=0.2,
        layer_patterns=TOY_LAYERS)
    hooked = _train(tmp_path, 'hooked', wrapper, path)
    bare = toy_runner(tmp_path / 'bare', wrapper, load_from=path)
    bare.train()
    a = dict(hooked.model.named_parameters())
    for n, p in bare.model.named_parameters():
        assert torch.equal(a[n], p), n


def test_resumed_plain_run_keeps_measuring_from_the_start(
        tmp_path, toy_pretrained):
    path, pretrained = toy_pretrained
    plain = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    _train(tmp_path, 'run', plain, path, max_iters=3)
    resumed = resumed_runner(
        tmp_path / 'run',
        plain,
        tmp_path / 'run' / 'iter_3.pth',
        custom_hooks=[dict(type='RollbackDriftHook', interval=2)],
        default_hooks=HOOKS)
    resumed.train()
    names = STAGES['backbone.stage2']
    logged = resumed.message_hub.get_scalar(
        'train/drift.backbone.stage2').current()
    # from the loaded pretrained weights, not from the resumed ones
    assert logged == pytest.approx(
        _direct(resumed, pretrained, names), rel=1e-6)


def test_resume_from_a_checkpoint_written_without_the_hook_fails(
        tmp_path, toy_pretrained):
    path, _ = toy_pretrained
    plain = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    toy_runner(tmp_path / 'run', plain, max_iters=3, load_from=path).train()
    resumed = resumed_runner(
        tmp_path / 'run',
        plain,
        tmp_path / 'run' / 'iter_3.pth',
        custom_hooks=[dict(type='RollbackDriftHook')])
    with pytest.raises(RuntimeError, match='olor_drift_theta0'):
        resumed.train()


def _scalars(work_dir):
    """The rows of a run's ``scalars.json`` (MMEngine's text log)."""
    (path, ) = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f]


def _probed_wrapper():
    """The OLOR wrapper of the runs whose drift _Probe records."""
    return olor_wrapper_cfg(
        dict(type='SGD', lr=0.05, momentum=0.9),
        rollback_max=0.3,
        layer_patterns=TOY_LAYERS)


class _Probe:
    """Direct drift of the backbone's stem after every iteration."""

    def __init__(self):
        from mmengine.hooks import Hook
        probe = self
        self.values = {}

        class ProbeHook(Hook):
            priority = 'LOWEST'

            def after_train_iter(self,
                                 runner,
                                 batch_idx,
                                 data_batch=None,
                                 outputs=None):
                model = runner.model
                anchor = olor_mm.find_rollback(runner.optim_wrapper.optimizer)
                names = {id(p): n for n, p in model.named_parameters()}
                now, ref = {}, {}
                for p, t in zip(anchor.anchored_params, anchor.theta0):
                    n = names[id(p)]
                    now[n], ref[n] = p.detach(), t
                stem = [
                    n for n in now if n.startswith('backbone.conv1')
                    or n.startswith('backbone.bn1')
                ]
                # the loop counts this iteration after the hooks ran
                probe.values[runner.iter + 1] = relative_drift(
                    now, ref, dict(stem=stem))['stem']

        self.hook = ProbeHook()


def test_epoch_based_run_logs_the_drift_of_the_logged_iteration(
        tmp_path, toy_pretrained):
    """LoggerHook counts iterations within the epoch in epoch-based runs:
    the drift logged at every line is that iteration's, also after epoch 1
    (6 iterations per epoch, a log line every 4 and at each epoch's end)."""
    path, _ = toy_pretrained
    cfg = runner_cfg(
        tmp_path / 'epochs',
        _probed_wrapper(),
        load_from=path,
        train_cfg=dict(by_epoch=True, max_epochs=3),
        custom_hooks=[dict(type='RollbackDriftHook')],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=4, ignore_last=False),
            checkpoint=dict(type='CheckpointHook', interval=1)))
    cfg['train_dataloader']['sampler'] = dict(
        type='DefaultSampler', shuffle=False)
    runner = Runner.from_cfg(cfg)
    probe = _Probe()
    runner.register_hook(probe.hook)
    runner.train()
    logged = {
        r['step']: r['drift.backbone.stem']
        for r in _scalars(tmp_path / 'epochs') if 'drift.backbone.stem' in r
    }
    # lines at inner iterations 4 and 6 of each epoch: global 4, 6, 10, ...
    assert sorted(logged) == [4, 6, 10, 12, 16, 18]
    for step, value in logged.items():
        assert value == pytest.approx(probe.values[step], rel=1e-6), step


def test_norm_helpers_by_hand():
    from olor_mm.core.norms import (relative, relative_terms, squared_distance,
                                    squared_norm)

    # the one relative-drift rule (drift.py and the drift hook): a zero
    # theta0 that moved is infinitely far, one that did not is not
    assert relative(4.0, 16.0) == 0.5
    assert relative(1.0, 0.0) == float('inf')
    assert relative(0.0, 0.0) == 0.0
    a = [torch.tensor([3.0, 0.0]), torch.tensor([[0.0], [4.0]])]
    assert float(squared_norm(a)) == 25.0
    assert float(squared_norm([])) == 0.0
    # the anchor in bf16 is cast to the parameters' dtype: 1 + 0 + 0 + 4
    b = [torch.tensor([3.0, 1.0]).bfloat16(), torch.tensor([[0.0], [6.0]])]
    assert squared_distance(a, b).dtype == torch.float64
    assert float(squared_distance(a, b)) == 5.0
    num, den = relative_terms(a, b)
    # ||(3, 1)|| = sqrt(10) is rounded to float32 before it is squared
    assert float(num) == 5.0
    assert float(den) == pytest.approx(9.0 + 1.0 + 36.0, rel=1e-7)


def test_iteration_based_run_logs_drift_on_the_epoch_end_line(
        tmp_path, toy_pretrained):
    """MMEngine's LoggerHook also writes a line when an iteration-based
    loop reaches the dataloader's length (6 batches here, interval 8):
    that line carries the drift too, so MMDetection's ``analyze_logs.py
    plot_curve --keys drift.backbone.stem`` finds the key on every line."""
    path, _ = toy_pretrained
    runner = toy_runner(
        tmp_path / 'iters',
        _probed_wrapper(),
        max_iters=10,
        load_from=path,
        custom_hooks=[dict(type='RollbackDriftHook')],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=8),
            checkpoint=dict(
                type='CheckpointHook', interval=10, by_epoch=False)))
    probe = _Probe()
    runner.register_hook(probe.hook)
    runner.train()
    rows = [r for r in _scalars(tmp_path / 'iters') if 'loss' in r]
    assert [r['step'] for r in rows] == [6, 8]  # 6: the epoch-end line
    for row in rows:
        assert row['drift.backbone.stem'] == pytest.approx(
            probe.values[row['step']], rel=1e-6), row['step']


def test_plot_drift_joins_a_run_and_its_resume(tmp_path, toy_pretrained):
    """A resumed run writes a new timestamp folder; plot_drift reads both,
    in order, as one curve."""
    import time
    path, _ = toy_pretrained
    wrapper = olor_wrapper_cfg(
        dict(type='SGD', lr=0.1), rollback_max=0.2, layer_patterns=TOY_LAYERS)
    _train(tmp_path, 'run', wrapper, path, max_iters=3)
    time.sleep(1.1)  # MMEngine names the folder by the second
    resumed = resumed_runner(
        tmp_path / 'run',
        wrapper,
        tmp_path / 'run' / 'iter_3.pth',
        max_iters=6,
        custom_hooks=[dict(type='RollbackDriftHook', interval=2)],
        default_hooks=HOOKS)
    resumed.train()
    files = plot_drift.find_scalars(str(tmp_path / 'run'))
    assert len(files) == 2 and files == sorted(files)
    series = plot_drift.load_series(files)
    steps, values = series['drift.backbone.stem']
    assert steps == [2, 4, 6]  # 2 from the first run, 4 and 6 resumed
    last = resumed.message_hub.get_scalar(
        'train/drift.backbone.stem').current()
    assert values[-1] == pytest.approx(last, rel=1e-6)


def test_plot_drift_tells_a_resume_from_a_new_run(tmp_path):
    """Files in time order: a resume continues the curve (its values win
    where both logged), a new run in the same work dir replaces it. The
    first run was logged by olor-mm 0.2 (``drift/<group>``)."""

    def write(name, rows, key='drift.backbone.stem'):
        path = tmp_path / name
        path.write_text(''.join(
            json.dumps({
                'step': s,
                key: v
            }) + '\n' for s, v in rows))
        return str(path)

    run = write(
        'a.json', [(2, 0.1), (4, 0.2), (6, 0.3)], key='drift/backbone.stem')
    resume = write('b.json', [(6, 0.35), (8, 0.4)])
    again = write('c.json', [(2, 0.5), (4, 0.6)])
    joined = plot_drift.load_series([run, resume])
    assert joined['drift.backbone.stem'] == ([2, 4, 6,
                                              8], [0.1, 0.2, 0.35, 0.4])
    fresh = plot_drift.load_series([run, resume, again])
    assert fresh['drift.backbone.stem'] == ([2, 4], [0.5, 0.6])


def test_upstream_log_analyzers_read_every_logged_point(
        tmp_path, toy_pretrained, monkeypatch):
    """MMDetection's ``analyze_logs.py`` reads a key holding ``/`` as a
    validation metric and skips the rest of its line: the drift hook's
    names hold none, so ``plot_curve --keys loss`` and ``--keys
    drift.backbone.stem`` get one point per logged line (5 here: the
    LoggerHook's interval 2 over 10 iterations), with ``step`` as x; drift
    and lam_eff are two series. MMSegmentation's analyzer reads them too."""
    path, _ = toy_pretrained
    runner = toy_runner(
        tmp_path / 'run',
        _probed_wrapper(),
        max_iters=10,
        load_from=path,
        custom_hooks=[dict(type='RollbackDriftHook')],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=2),
            checkpoint=dict(
                type='CheckpointHook', interval=10, by_epoch=False)))
    runner.train()
    # the json log: vis_data/<timestamp>.json
    log, = glob.glob(str(tmp_path / 'run' / '*' / 'vis_data' / '2*.json'))
    rows = [json.loads(line) for line in open(log)]
    assert [r['step'] for r in rows if 'loss' in r] == [2, 4, 6, 8, 10]
    det = upstream_analyzer('mmdet', monkeypatch).load_json_logs([log])[0]
    series = det[1]  # MMDetection's epoch key of an iteration-based run
    for key in ('step', 'loss', 'drift.backbone.stem',
                'lam_eff.backbone.stem'):
        assert len(series[key]) == 5, (key, dict(series))
    assert series['step'] == [2, 4, 6, 8, 10]
    assert series['drift.backbone.stem'] == [
        r['drift.backbone.stem'] for r in rows if 'loss' in r
    ]
    assert series['lam_eff.backbone.stem'] != series['drift.backbone.stem']
    seg = upstream_analyzer('mmseg', monkeypatch).load_json_logs([log])[0]
    assert sorted(seg) == [2, 4, 6, 8, 10]
    assert all(
        len(seg[s]['drift.backbone.stem']) == 1 and len(seg[s]['loss']) == 1
        for s in seg)


def _drift_hook(interval):
    olor_mm.RollbackDriftHook(interval=interval)


# (id, call, exception, the key, the fix)
BAD_INPUTS = [
    ('drift hook prefixes None',
     lambda: olor_mm.RollbackDriftHook(prefixes=None), ValueError,
     r'RollbackDriftHook\.prefixes=None', r"prefixes=\('backbone',\)"),
    ('drift hook interval 0', lambda: _drift_hook(0), ValueError,
     r'RollbackDriftHook\.interval=0', r'positive integer'),
    ('drift hook interval a string', lambda: _drift_hook('5'), ValueError,
     r"RollbackDriftHook\.interval='5'", r'positive integer'),
]


@bad_input_cases(BAD_INPUTS)
def test_bad_input_names_the_key_and_the_fix(call, error, key, fix):
    check_bad_input(call, error, key, fix)
