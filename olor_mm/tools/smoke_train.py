"""Prove an olor-mm config trains, before sending it to a cluster.

``python tools/smoke_train.py CONFIG [--work-dir D] [--iters 2]`` runs a
COCO-, ADE20K- or Cityscapes-style mmdet / mmseg config end to end on the
CPU, at reduced scale, through the same code paths as ``tools/train.py`` and
``tools/test.py``:

1. data: the generated data set in the config's upstream layout
   (``olor_mm/tools/upstream_layouts.py``) under ``WORK_DIR/data`` if
   missing (or ``--data-root``), checked against the config (annotation
   files, images, label range); dataset wrappers (``MultiImageMixDataset``,
   ``RepeatDataset``, ``ConcatDataset``, ``ClassBalancedDataset``) keep
   their place, the data sets inside them get the data;
2. pretrained weights: a local stand-in of every checkpoint the model
   loads (each ``init_cfg`` with a ``checkpoint``, nested ones included,
   ``model.pretrained``; for ``load_from``, the whole detector with COCO's
   80 classes) written by ``tools/make_pretrained.py`` in a format the
   module's own initialisation reads back exactly; nothing is downloaded;
3. the reduced-scale overrides (image scale x ``--scale``, batch 2, no
   workers, ``--iters`` iterations: one epoch of ``iters x batch`` images
   for epoch-based configs; detectors keep at most 100 proposals and sample
   64 RoIs per image, and 50 detections at test time) and a rollback
   strong enough to see in two
   iterations (lam = 0.5 on every rolled-back layer, not scaled by the
   warm-up lr); a model that needs larger images than the reduced scale
   gives (DETR-style query top-k, fixed pooling kernels) is trained again
   at twice the scale, up to full scale, and the line says so;
4. three trainings, in this process: with rollback, the same without
   (``rollback_max=0``), and a resume of the first for one more epoch /
   iteration; then ``tools/test.py``'s evaluation with the config's metric.

It prints one line per check and exits 0 only if every check held:
finite losses; theta0 = the pretrained checkpoint's values; the rolled-back
weights closer to theta0 than without rollback; theta0 in the checkpoint;
resume restores theta0 bit for bit and trains on; the metric is reported.
"""
import argparse
import contextlib
import copy
import math
import numbers
import os
import os.path as osp
import sys
import time
import warnings

import torch

import olor_mm
from olor_mm.cli import build_runner, evaluate
from olor_mm.core.theta0 import saved_theta0

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

#: dataset class (by name) -> upstream layout
LAYOUT_OF = dict(
    CocoDataset='coco', ADE20KDataset='ade20k', CityscapesDataset='cityscapes')
#: the pull of the comparison run: lam = 0.5 on every rolled-back layer,
#: not scaled by the (warm-up) lr, so that two iterations show it
STRONG = dict(rollback_max=0.5, rollback_min=0.5, scale_with_lr=False)
SPATIAL_KEYS = ('scale', 'scales', 'crop_size', 'img_scale', 'size', 'stride')


class SmokeError(Exception):
    """A check that failed, with the message to print."""


def _is_pair(v):
    return (isinstance(v, (list, tuple)) and len(v) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in v))


def shrink(node, factor: float):
    """Scale every image size (pairs of ints under SPATIAL_KEYS) in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SPATIAL_KEYS and _is_pair(value):
                node[key] = type(value)(
                    max(8, int(round(v * factor))) for v in value)
            elif key in SPATIAL_KEYS and isinstance(value, list) and value \
                    and all(_is_pair(v) for v in value):
                node[key] = [
                    type(v)(max(8, int(round(x * factor))) for x in v)
                    for v in value
                ]
            else:
                shrink(value, factor)
    elif isinstance(node, (list, tuple)):
        for value in node:
            shrink(value, factor)


def set_key(node, key, value) -> None:
    """Set ``key`` wherever it occurs in a nested config, in place."""
    if isinstance(node, dict):
        for k in node:
            if k == key:
                node[k] = value
            else:
                set_key(node[k], key, value)
    elif isinstance(node, (list, tuple)):
        for v in node:
            set_key(v, key, value)


def cap(node, limits: dict) -> None:
    """``min(value, limit)`` for the integer keys of ``limits``, nested."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in limits and isinstance(
                    v, int) and not isinstance(v, bool) and v > limits[k]:
                node[k] = limits[k]
            else:
                cap(v, limits)
    elif isinstance(node, (list, tuple)):
        for v in node:
            cap(v, limits)


#: what a detector handles per image on the CPU (proposals kept, RoIs
#: sampled for the heads, detections kept at test time)
CPU_CAPS = dict(nms_pre=200, max_per_img=100, num=64)


def dataloaders(cfg):
    return [(k, cfg[k])
            for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')
            if cfg.get(k)]


def leaf_datasets(dataset):
    """The data sets inside a dataset config, through wrappers
    (``dataset=`` / ``datasets=``), in order."""
    if dataset.get('datasets') is not None:
        for inner in dataset.datasets:
            yield from leaf_datasets(inner)
    elif dataset.get('dataset') is not None:
        yield from leaf_datasets(dataset.dataset)
    else:
        yield dataset


def layout_of(cfg) -> str:
    kind = next(leaf_datasets(cfg.train_dataloader.dataset)).type
    if kind not in LAYOUT_OF:
        raise SmokeError(
            f'train_dataloader.dataset.type={kind!r}: smoke_train makes data '
            f'for {sorted(LAYOUT_OF)} (COCO, ADE20K, Cityscapes layouts); '
            'pass --data-root with data of your own.')
    return LAYOUT_OF[kind]


def point_to_data(cfg, data_root: str) -> None:
    """Every dataloader and evaluator on ``data_root`` instead of the
    config's, keeping the relative file names (the upstream layout)."""
    old = next(leaf_datasets(cfg.train_dataloader.dataset)).get(
        'data_root', '')
    for _, loader in dataloaders(cfg):
        for dataset in leaf_datasets(loader.dataset):
            dataset.data_root = data_root
    for key in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(key)
        for ev in (evaluators if isinstance(evaluators, list) else
                   [evaluators] if evaluators else []):
            ann = ev.get('ann_file')
            if ann and old and ann.startswith(old.rstrip('/')):
                rel = ann[len(old.rstrip('/')):].lstrip('/')
                ev.ann_file = osp.join(data_root, rel)


def check_data(cfg) -> str:
    """Build every dataset of the config; stop naming the key or path.

    Raises:
        SmokeError: a missing annotation file or folder, zero images, or a
            label map with values outside the config's classes.
    """
    from mmengine.registry import DefaultScope
    scope = cfg.default_scope
    datasets = __import__(f'{scope}.registry', fromlist=['DATASETS'])
    counts = []
    with DefaultScope.overwrite_default_scope(scope):
        for key, loader in dataloaders(cfg):
            dcfg = copy.deepcopy(loader.dataset)
            for leaf in leaf_datasets(dcfg):
                leaf.pop('indices', None)
                # an empty data set crashes MMEngine's serialisation with
                # "need at least one array to concatenate": count it first
                leaf.serialize_data = False
            try:
                dataset = datasets.DATASETS.build(dcfg)
            except (FileNotFoundError, OSError) as err:
                leaf = next(leaf_datasets(dcfg))
                raise SmokeError(
                    f'{key}.dataset (data_root={leaf.get("data_root")!r}, '
                    f'ann_file={leaf.get("ann_file")!r}, data_prefix='
                    f'{leaf.get("data_prefix")}): {err}') from err
            if len(dataset) == 0:
                leaf = next(leaf_datasets(dcfg))
                raise SmokeError(
                    f'{key}.dataset has zero images under data_root='
                    f'{leaf.get("data_root")!r} with data_prefix='
                    f'{leaf.get("data_prefix")} (check the paths and '
                    'file suffixes).')
            while hasattr(dataset, 'dataset'):  # a wrapper
                dataset = dataset.dataset
            if scope == 'mmseg':
                _check_labels(key, dataset)
            counts.append(f'{key.split("_")[0]} {len(dataset)}')
    return ', '.join(counts)


def _check_labels(key, dataset, limit: int = 20) -> None:
    """Label maps hold classes 0..C-1 (after reduce_zero_label) or 255."""
    import mmcv
    import numpy as np
    classes = len(dataset.metainfo['classes'])
    for i in range(min(len(dataset), limit)):
        info = dataset.get_data_info(i)  # data_list is serialised away
        path = info['seg_map_path']
        label = mmcv.imread(path, flag='unchanged', backend='pillow')
        if label is None:
            raise SmokeError(f'{key}: cannot read the label map {path}')
        values = np.unique(label).astype(int)
        if info.get('reduce_zero_label'):
            values = np.where(values == 0, 255, values - 1)
        bad = [int(v) for v in values if v != 255 and not 0 <= v < classes]
        if bad:
            raise SmokeError(
                f'{key}: label map {path} holds {bad[:5]}, outside 0..'
                f'{classes - 1} (+255 ignored) for the {classes} classes of '
                f'{type(dataset).__name__}' +
                (' after reduce_zero_label' if info.get('reduce_zero_label'
                                                        ) else '') + '.')


def stand_in_checkpoints(cfg, folder: str, quiet=contextlib.nullcontext):
    """Stand-ins for every checkpoint the model loads; the config points
    at them. Returns ``(expected values by parameter name, report)``.

    Raises:
        SmokeError: when a checkpoint has no stand-in, or a remote one is
            left (nothing may be downloaded).
    """
    from olor_mm.tools.pretrained import (REMOTE, checkpoint_keys, set_key,
                                          write_pretrained, write_stand_in)
    keys = checkpoint_keys(cfg)
    by_source = {}
    for key, source in keys.items():
        by_source.setdefault(source, []).append(key)
    expected, report = {}, []
    for i, (source, where) in enumerate(by_source.items()):
        path = osp.join(folder, f'stand_in_{i}.pth')
        try:
            with quiet():
                if 'load_from' in where:
                    values = write_pretrained(
                        cfg, path, True,
                        80 if cfg.default_scope == 'mmdet' else None)
                else:
                    values = write_stand_in(cfg, source, path)
        except RuntimeError as err:
            raise SmokeError(f'{", ".join(where)}: {err}') from err
        for key in where:
            set_key(cfg, key, path)
        expected.update(values)
        report.append(f'{", ".join(where)} = local stand-in for {source}: '
                      f'{path} ({len(values)} tensors)')
    left = {
        k: v
        for k, v in checkpoint_keys(cfg).items() if str(v).startswith(REMOTE)
    }
    if left:
        raise SmokeError(f'the config still loads {left}: smoke_train '
                         'downloads nothing; set those keys to None or to '
                         'local files with --cfg-options.')
    return expected, report


def reduce(cfg, work_dir: str, tag: str, iters: int, scale: float):
    """The reduced-scale copy of ``cfg`` for one run under work_dir/tag."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = osp.join(work_dir, tag)
    cfg.experiment_name = f'smoke_{tag}_{time.time_ns()}'
    cfg.launcher = 'none'
    # the runs with and without rollback see the same data and augmentation
    cfg.randomness = dict(seed=0)
    for _, loader in dataloaders(cfg):
        shrink(loader.dataset, scale)  # wrappers' pipelines (mosaic) too
        loader.num_workers = 0
        loader.persistent_workers = False
    shrink(cfg.model.get('data_preprocessor', {}), scale)
    shrink(cfg.model.get('test_cfg', {}), scale)
    cap(cfg.model.get('train_cfg', {}), CPU_CAPS)
    cap(cfg.model.get('test_cfg', {}), dict(CPU_CAPS, max_per_img=50))
    batch = min(cfg.train_dataloader.get('batch_size', 2), 2)
    cfg.train_dataloader.batch_size = batch
    for key in ('val_dataloader', 'test_dataloader'):
        if cfg.get(key):
            cfg[key].batch_size = 1
    loop = cfg.train_cfg
    by_epoch = 'max_epochs' in loop
    if by_epoch:
        loop.max_epochs = 1
        loop.val_interval = 10**6  # evaluation is tools/test.py's, below
        for dataset in leaf_datasets(cfg.train_dataloader.dataset):
            dataset.indices = iters * batch
    else:
        loop.max_iters = iters
        loop.val_interval = 10**6
    hooks = cfg.default_hooks
    hooks.checkpoint.update(
        interval=1 if by_epoch else iters,
        by_epoch=by_epoch,
        max_keep_ckpts=-1)
    hooks.logger.interval = 1
    return cfg


def rollback_strength(cfg, **paramwise):
    ow = cfg.optim_wrapper
    for key in ('scale_with_lr', 'anchor_dtype'):
        if key in ow and key in paramwise:
            ow.pop(key)
    ow.paramwise_cfg.update(paramwise)


#: where MMEngine's console output goes (WORK_DIR/smoke.out); it stays
#: open for the whole run, as MMEngine's loggers keep the stream they saw
_OUT = {}


@contextlib.contextmanager
def quiet_into(f):
    """Console output (MMEngine's logs, warnings) into the open file ``f``.

    ``f`` must stay open as long as the process logs: MMEngine's loggers
    keep the stream they were created with.
    """
    with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        yield
    f.flush()


def quiet():
    """MMEngine's console output into WORK_DIR/smoke.out."""
    return quiet_into(_OUT['file'])


#: wall time of each phase, for the summary line
TIMES = {}


def train(cfg, tag):
    start = time.time()
    with quiet():
        runner = build_runner(cfg)
        runner.train()
    TIMES[tag] = time.time() - start
    return runner


def losses(runner):
    """The total training loss of every iteration of the run."""
    buffer = runner.message_hub.log_scalars.get('train/loss')
    return [] if buffer is None else [float(v) for v in buffer.data[0]]


def anchored(runner):
    """{parameter name: theta0} of the run's rollback."""
    model = runner.model.module if hasattr(runner.model, 'module') else \
        runner.model
    names = {id(p): n for n, p in model.named_parameters()}
    handle = olor_mm.find_rollback(runner.optim_wrapper.optimizer)
    if handle is None or handle.theta0 is None:
        return {}
    return {
        names[id(p)]: t
        for p, t in zip(handle.anchored_params, handle.theta0)
    }


def weights(runner):
    model = runner.model.module if hasattr(runner.model, 'module') else \
        runner.model
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


class Report:
    """One line per check; remembers failures."""

    def __init__(self):
        self.failed = []
        self.count = 0

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.count += 1
        print(f'{"PASS" if ok else "FAIL"} {name:<11} {detail}', flush=True)
        if not ok:
            self.failed.append(name)
        return ok


def prepare(args, cfg, report: Report):
    """Data and pretrained weights; returns (cfg, expected theta0 values)."""
    from olor_mm.tools.upstream_layouts import write_layout
    if args.data_root:
        data_root = args.data_root
        source = 'given'
    else:
        layout = layout_of(cfg)
        data_root = osp.join(args.work_dir, 'data', layout)
        if layout == 'ade20k':
            data_root = osp.join(data_root, 'ADEChallengeData2016')
        source = f'generated {layout} layout'
        if not osp.isdir(data_root):
            classes = next(leaf_datasets(cfg.train_dataloader.dataset)).get(
                'metainfo', {}).get('classes')
            write_layout(
                layout,
                osp.join(args.work_dir, 'data', layout),
                num_train=max(8, 2 * args.iters + 2),
                num_val=2,
                classes=classes if layout == 'coco' else None)
    point_to_data(cfg, data_root)
    with quiet():
        counts = check_data(cfg)
    report.check('data', True, f'{source} at {data_root}: {counts} images')
    expected, lines = stand_in_checkpoints(
        cfg, osp.join(args.work_dir, 'pretrained'), quiet)
    if lines:
        report.check('pretrained', True, '; '.join(lines))
    else:
        report.check(
            'pretrained', True, 'the config loads no pretrained '
            'weights: theta0 is checked against the weights at '
            'training start')
    return cfg, expected


#: what a model says when the reduced images are too small for it (a
#: DETR's query top-k over too few positions, a fixed pooling kernel, a
#: window larger than the feature map)
SIZE_ERRORS = ('out of range', 'too small', 'smaller than', 'size of tensor',
               'input size', 'must match')


def trainings(cfg, args):
    """The runs with rollback and without; again at twice the scale (up to
    full scale) while the model needs larger images than it got.

    Returns:
        tuple: the rollback run's config and ``{'olor': runner, 'plain':
        runner}``.
    """
    scale = args.scale
    while True:
        olor_cfg = reduce(cfg, args.work_dir, 'olor', args.iters, scale)
        rollback_strength(olor_cfg, **STRONG)
        plain_cfg = reduce(cfg, args.work_dir, 'plain', args.iters, scale)
        rollback_strength(plain_cfg, rollback_max=0.0, rollback_min=0.0)
        try:
            return olor_cfg, {
                tag: train(run_cfg, tag)
                for tag, run_cfg in (('olor', olor_cfg), ('plain', plain_cfg))
            }
        except (RuntimeError, AssertionError, ValueError, IndexError) as err:
            said = str(err).strip().splitlines()[0] if str(err).strip() \
                else type(err).__name__
            if scale >= 1.0 or not any(m in said.lower() for m in SIZE_ERRORS):
                raise
            larger = min(1.0, scale * 2)
            print(
                f'NOTE scale {scale:g} -> {larger:g}: the model needs larger '
                f'images ({type(err).__name__}: {said[:160]})',
                flush=True)
            scale = larger


def run(args) -> int:
    from olor_mm.tools.config_input import (for_this_machine, load,
                                            one_line_errors,
                                            rollback_constructor)
    start = time.time()
    report = Report()
    with one_line_errors('smoke_train'):
        cfg = load(args.config, args.cfg_options)
        ow = cfg.get('optim_wrapper', {})
        if ow.get('constructor') != 'LayerwiseRollbackConstructor':
            raise SmokeError('optim_wrapper.constructor is not '
                             "'LayerwiseRollbackConstructor': there is no "
                             'rollback to check in this config.')
        note = for_this_machine(cfg)
        rollback_constructor(cfg)  # every OLOR key, before any training
        print(
            f'smoke_train: {args.config} ({cfg.default_scope}, scale '
            f'{args.scale}, {args.iters} iterations, work dir '
            f'{args.work_dir})',
            flush=True)
        if note:
            print(note, flush=True)
        cfg, expected = prepare(args, cfg, report)
    from olor_mm.engine.config_keys import OLOR_DEFAULTS
    config_olor = {
        k: ow.paramwise_cfg.get(k, ow.get(k, OLOR_DEFAULTS.get(k)))
        for k in STRONG
    }

    olor_cfg, runners = trainings(cfg, args)
    values = {tag: losses(r) for tag, r in runners.items()}
    finite = all(
        v and all(math.isfinite(x) for x in v) for v in values.values())
    report.check(
        'losses', finite, ', '.join(f'{tag}: ' + ' '.join(f'{x:.4g}'
                                                          for x in v)
                                    for tag, v in values.items()))

    theta0 = anchored(runners['olor'])
    if expected:
        same = [
            n for n, t in theta0.items()
            if n in expected and torch.equal(t, expected[n])
        ]
        new = [n for n in theta0 if n not in expected]
        report.check(
            'theta0',
            len(same) == len(theta0) > 0,
            f'{len(same)} of {len(theta0)} rolled-back tensors '
            "equal the pretrained checkpoint's values" +
            (f'; {len(new)} are in no checkpoint (e.g. {new[0]}) and would '
             'roll back toward their random initialisation: narrow '
             'paramwise_cfg.pretrained_prefixes to the pretrained modules'
             if new else ''))
    else:
        report.check(
            'theta0', bool(theta0),
            f'{len(theta0)} rolled-back tensors anchored at the '
            'weights of training start (no checkpoint to compare)')

    w_olor, w_plain = weights(runners['olor']), weights(runners['plain'])
    d_olor = sum(
        float((w_olor[n] - t).double().pow(2).sum())
        for n, t in theta0.items())**0.5
    d_plain = sum(
        float((w_plain[n] - t).double().pow(2).sum())
        for n, t in theta0.items())**0.5
    report.check(
        'rollback', d_olor < 0.95 * d_plain,
        f'||theta - theta0|| over them: {d_olor:.3e} with rollback '
        f'vs {d_plain:.3e} without '
        f'({100 * (d_olor / d_plain - 1) if d_plain else 0:+.0f} %; '
        f'lam = {STRONG["rollback_max"]} everywhere for the check; '
        f'the config has rollback_max={config_olor["rollback_max"]})')

    ckpt = last_checkpoint(olor_cfg.work_dir)
    from mmengine.runner.checkpoint import CheckpointLoader
    saved = CheckpointLoader.load_checkpoint(ckpt, map_location='cpu')
    held = saved_theta0(saved.get('optimizer', {}))
    report.check('checkpoint',
                 len(held) == len(theta0) > 0,
                 f'{osp.basename(ckpt)} holds theta0 of {len(held)} tensors')

    resume_cfg = copy.deepcopy(olor_cfg)
    resume_cfg.resume = True
    resume_cfg.load_from = ckpt
    resume_cfg.experiment_name += '_resume'
    if 'max_epochs' in resume_cfg.train_cfg:
        resume_cfg.train_cfg.max_epochs += 1
    else:
        resume_cfg.train_cfg.max_iters += 1
    resumed = train(resume_cfg, 'resume')
    restored = anchored(resumed)
    bit = restored.keys() == theta0.keys() and all(
        torch.equal(restored[n], theta0[n]) for n in theta0)
    report.check(
        'resume', bit and resumed.iter > runners['olor'].iter,
        f'from {osp.basename(ckpt)}: iteration '
        f'{runners["olor"].iter} -> {resumed.iter}, theta0 ' +
        ('restored bit for bit' if bit else 'NOT restored'))

    test_cfg = copy.deepcopy(olor_cfg)
    test_cfg.work_dir = osp.join(args.work_dir, 'test')
    test_cfg.experiment_name += '_test'
    # a model after two iterations scores below the config's threshold
    # everywhere, and an untrained head predicts degenerate boxes; the
    # metric needs detections to be computed
    set_key(test_cfg.model.get('test_cfg', {}), 'score_thr', 0.0)
    set_key(test_cfg.model.get('test_cfg', {}), 'min_bbox_size', -1)
    start_test = time.time()
    with quiet():
        metrics = evaluate(test_cfg, last_checkpoint(resume_cfg.work_dir))
    TIMES['test'] = time.time() - start_test
    shown = {
        k: float(v)
        for k, v in metrics.items() if isinstance(v, numbers.Real)
    }  # numpy scalars included
    report.check(
        'evaluate',
        bool(shown) and all(math.isfinite(v) for v in shown.values()),
        'tools/test.py: ' + ', '.join(f'{k}={v:.3f}'
                                      for k, v in list(shown.items())[:4]))
    took = time.time() - start
    if report.failed:
        print(f'smoke_train: {len(report.failed)} of {report.count} checks '
              f'failed ({", ".join(report.failed)}) in {took:.0f} s; the '
              f'runs\' output is in {_OUT["file"].name}')
        return 1
    print(f'smoke_train: all {report.count} checks passed in {took:.0f} s (' +
          ', '.join(f'{k} {v:.0f} s' for k, v in TIMES.items()) + ')')
    return 0


def parse_args(argv=None):
    from olor_mm.cli import CfgOptions
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--work-dir',
        default=None,
        help='default: work_dirs/smoke/<config name>')
    parser.add_argument(
        '--iters', type=int, default=2, help='training iterations per run (2)')
    parser.add_argument(
        '--scale',
        type=float,
        default=0.25,
        help='factor on every image size of the config')
    parser.add_argument(
        '--data-root',
        default=None,
        help='use this data set instead of generating one')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptions)
    args = parser.parse_args(argv)
    if args.work_dir is None:
        args.work_dir = osp.join('work_dirs', 'smoke',
                                 osp.splitext(osp.basename(args.config))[0])
    if args.iters < 1:
        parser.error('--iters must be >= 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'smoke.out'), 'w') as f:
        _OUT['file'] = f
        try:
            return run(args)
        except SmokeError as err:
            print(f'FAIL {err}', flush=True)
            return 1


if __name__ == '__main__':
    sys.exit(main())
