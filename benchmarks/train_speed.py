"""Training speed of real configs: iterations/s, peak memory, step shares.

For each CONFIG, variant and precision mode it trains ``--warmup + --iters``
iterations on generated data in the config's upstream layout (at the
config's own image scale and per-GPU batch unless ``--scale`` / ``--batch``
say otherwise; see ``tools/smoke_train.py`` for the data and the local
pretrained checkpoint), in this process, and records for the timed
iterations (medians, synchronised clocks):

- ``iters_per_s``; ``peak_mem_mib`` (``torch.cuda.max_memory_allocated``,
  or the process's peak RSS on the CPU);
- ``step_share``: the optimizer step (``optimizer.step()``, rollback
  included) over the iteration, and ``rollback_share``: the rollback alone.

Variants: ``olor`` (the config as shipped), ``plain`` (the same with
``rollback_max=0``: nothing attached does anything), ``stock`` (the upstream
config it inherits, with the same optimizer: MMEngine's constructor and
wrapper, torch's default implementation, what users run today). Modes:
``fp32``,
``amp`` (``--amp`` of tools/train.py). Every finished run is appended to
``--out`` (JSON) at once, and a run already there is skipped, so a stopped
sweep resumes where it stopped; ``--deadline`` (seconds) stops before a run
that would start after it and lists what was left.

Example (one H200: tools/gpu_check.sh runs this)::

    python benchmarks/train_speed.py configs/mmdet/*.py configs/mmseg/*.py \\
        --iters 20 --warmup 5 --out benchmarks/results/train_speed_h200.json
"""
import argparse
import copy
import datetime
import json
import os
import os.path as osp
import platform
import resource
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

import sys

import olor_mm
from olor_mm.cli import build_runner, enable_amp

sys.path.append(osp.join(ROOT, 'tools'))  # tools/olor_mm_tools
from olor_mm.tools.smoke_train import (layout_of, leaf_datasets, point_to_data,
                                       quiet_into, shrink,
                                       stand_in_checkpoints)
from olor_mm.tools.tables import markdown_table
from olor_mm_tools.clocks import Clocks

#: image size (height, width) the generated data is drawn at, per layout,
#: so that the upstream pipelines see full-size images
FULL_SIZES = dict(coco=(800, 1333), ade20k=(512, 512), cityscapes=(1024, 2048))


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float('nan')


def prepare_data(cfg, work_dir: str, scale: float, batch: int) -> None:
    """Generated data at the (scaled) upstream size; cfg points at it."""
    from olor_mm.tools.upstream_layouts import write_layout
    layout = layout_of(cfg)
    h, w = FULL_SIZES[layout]
    size = (max(32, int(h * scale)), max(32, int(w * scale)))
    out = osp.join(work_dir, 'data', f'{layout}_{size[0]}x{size[1]}')
    root = osp.join(out, 'ADEChallengeData2016') if layout == 'ade20k' \
        else out
    if not osp.isdir(root):
        classes = next(leaf_datasets(cfg.train_dataloader.dataset)).get(
            'metainfo', {}).get('classes')
        write_layout(
            layout,
            out,
            num_train=max(4, batch * 2),
            num_val=1,
            size=size,
            classes=classes if layout == 'coco' else None)
    point_to_data(cfg, root)


def upstream_config(path: str):
    """The upstream config an olor-mm config inherits (its ``mmdet::`` /
    ``mmseg::`` base), loaded as MMDetection / MMSegmentation ship it."""
    import ast

    from mmengine.config import Config
    with open(path) as f:
        tree = ast.parse(f.read())
    bases = next(
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign)
        and getattr(node.targets[0], 'id', None) == '_base_')
    for base in [bases] if isinstance(bases, str) else bases:
        if '::' in base:
            package, rel = base.split('::')
            module = __import__(package)
            return Config.fromfile(
                osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel))
    raise ValueError(f'{path}: no mmdet:: / mmseg:: base to compare with')


def speed_cfg(cfg, variant: str, mode: str, args, work_dir: str):
    """The config of one timed run.

    ``stock`` is the upstream config the olor-mm one inherits, with the
    olor-mm config's optimizer (the same optimizer, MMEngine's own
    constructor and wrapper, torch's default implementation).
    """
    if variant == 'stock':
        stock = upstream_config(cfg.filename)
        stock.optim_wrapper.optimizer = copy.deepcopy(
            cfg.optim_wrapper.optimizer)
        stock.optim_wrapper.pop('constructor', None)
        stock.filename = cfg.filename
        cfg = stock
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'speed_{time.time_ns()}'
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=0)
    batch = args.batch or cfg.train_dataloader.batch_size
    cfg.train_dataloader.batch_size = batch
    cfg.train_dataloader.num_workers = args.workers
    cfg.train_dataloader.persistent_workers = args.workers > 0
    if args.scale != 1.0:
        shrink(cfg.train_dataloader.dataset, args.scale)
        shrink(cfg.model.get('data_preprocessor', {}), args.scale)
    prepare_data(cfg, args.work_dir, args.scale, batch)
    stand_in_checkpoints(
        cfg,
        osp.join(args.work_dir, 'pretrained',
                 osp.splitext(osp.basename(cfg.filename))[0]))
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=args.warmup + args.iters)
    for k in ('val_cfg', 'val_dataloader', 'val_evaluator', 'test_cfg',
              'test_dataloader', 'test_evaluator'):
        cfg[k] = None
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=-1, save_last=False)
    cfg.default_hooks.logger.interval = 10**6
    if variant == 'plain':  # olor-mm's set-up without the rollback
        cfg.optim_wrapper.paramwise_cfg.rollback_max = 0.0
        cfg.optim_wrapper.paramwise_cfg.rollback_min = 0.0
    if mode == 'amp':
        enable_amp(cfg)
    return cfg


def time_run(cfg, warmup: int) -> dict:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    clocks = Clocks(warmup)
    runner = build_runner(cfg)
    clocks.attach(runner)
    runner.train()
    it, step = _median(clocks.iters), _median(clocks.steps)
    rb = _median(clocks.rollbacks) if clocks.rollbacks else 0.0
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    handle = olor_mm.find_rollback(runner.optim_wrapper.optimizer)
    return dict(
        wrapper=type(runner.optim_wrapper).__name__,
        rolled_params=sum(p.numel() for p in handle.anchored_params)
        if handle is not None and handle.active else 0,
        iters_timed=len(clocks.iters),
        iters_per_s=1.0 / it,
        median_iter_ms=it * 1e3,
        median_step_ms=step * 1e3,
        median_rollback_ms=rb * 1e3,
        step_share=step / it,
        rollback_share=rb / it,
        peak_mem_mib=peak)


def machine() -> str:
    if torch.cuda.is_available():
        return (f'{torch.cuda.get_device_name()}, torch {torch.__version__}'
                f', CUDA {torch.version.cuda}')
    return (f'{platform.processor() or platform.machine()} CPU, '
            f'{os.cpu_count()} cores, torch {torch.__version__}')


def load(path: str) -> dict:
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    return dict(machine=machine(), runs=[])


def write_markdown(results: dict, path: str) -> None:
    lines = [
        f'# Training speed ({results["machine"]})', '',
        'Written by `python benchmarks/train_speed.py` (medians of the '
        'timed iterations; step = `optimizer.step()` with the rollback; '
        'memory: peak allocated on the GPU; on the CPU the peak RSS of the '
        'process up to that run).', ''
    ]
    header = ('config', 'variant', 'mode', 'date', 'iters/s', 'iteration ms',
              'step %', 'rollback %', 'peak MiB')
    rows = [(r['config'], r['variant'], r['mode'], r['date'],
             f"{r['iters_per_s']:.2f}", f"{r['median_iter_ms']:.0f}",
             f"{100 * r['step_share']:.1f}",
             f"{100 * r['rollback_share']:.2f}", f"{r['peak_mem_mib']:.0f}")
            for r in results['runs']]
    lines.append(markdown_table(rows, header, 'llllrrrrr'))
    if results.get('left_out'):
        lines += [
            '',
            'Not run in the last call: ' + ', '.join(results['left_out']) + '.'
        ]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument(
        '--variants',
        nargs='+',
        default=['olor', 'plain'],
        choices=['olor', 'plain', 'stock'])
    parser.add_argument(
        '--modes', nargs='+', default=['fp32', 'amp'], choices=['fp32', 'amp'])
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument(
        '--scale',
        type=float,
        default=1.0,
        help='factor on every image size (1: upstream)')
    parser.add_argument(
        '--batch',
        type=int,
        default=None,
        help='images per iteration (default: the '
        "config's per-GPU batch)")
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--work-dir', default='work_dirs/train_speed')
    parser.add_argument(
        '--out',
        default=None,
        help='JSON of the runs (default benchmarks/'
        'results/train_speed_<cpu|cuda>.json); a .md is '
        'written beside it')
    parser.add_argument(
        '--deadline',
        type=float,
        default=None,
        help='seconds; no run starts after it')
    return parser.parse_args(argv)


def main(argv=None):
    from mmengine.config import Config
    args = parse_args(argv)
    start = time.time()
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    out = args.out or osp.join(ROOT, 'benchmarks', 'results',
                               f'train_speed_{device}.json')
    results = load(out)
    done = {(r['config'], r['variant'], r['mode'], r['iters'], r['scale'])
            for r in results['runs']}
    todo = [(c, v, m) for c in args.configs for m in args.modes
            for v in args.variants]
    results['left_out'] = []
    os.makedirs(args.work_dir, exist_ok=True)
    # MMEngine's console output; open for the whole process (see quiet_into)
    log = open(osp.join(args.work_dir, 'train_speed.out'), 'a')
    for k, (path, variant, mode) in enumerate(todo):
        name = osp.splitext(osp.basename(path))[0]
        if (name, variant, mode, args.iters, args.scale) in done:
            print(
                f'[{k + 1}/{len(todo)}] {name} {variant} {mode}: done '
                'before, skipped',
                flush=True)
            continue
        if args.deadline and time.time() - start > args.deadline:
            results['left_out'].append(f'{name} {variant} {mode} (deadline)')
            continue
        if mode == 'amp' and device == 'cpu':
            results['left_out'].append(f'{name} {variant} amp (no GPU)')
            continue
        t = time.time()
        with quiet_into(log):
            run_cfg = speed_cfg(
                Config.fromfile(path), variant, mode, args,
                osp.join(args.work_dir, name, variant, mode))
            record = time_run(run_cfg, args.warmup)
        record.update(
            config=name,
            variant=variant,
            mode=mode,
            iters=args.iters,
            scale=args.scale,
            batch=run_cfg.train_dataloader.batch_size,
            date=datetime.date.today().isoformat(),
            wall_s=time.time() - t)
        results['runs'].append(record)
        with open(out, 'w') as f:
            json.dump(results, f, indent=1)
        print(
            f'[{k + 1}/{len(todo)}] {name} {variant} {mode}: '
            f'{record["iters_per_s"]:.2f} it/s, step '
            f'{100 * record["step_share"]:.1f} %, rollback '
            f'{100 * record["rollback_share"]:.2f} %, peak '
            f'{record["peak_mem_mib"]:.0f} MiB ({record["wall_s"]:.0f} s)',
            flush=True)
    with open(out, 'w') as f:
        json.dump(results, f, indent=1)
    write_markdown(results, osp.splitext(out)[0] + '.md')
    if results['left_out']:
        print('left out: ' + '; '.join(results['left_out']))


if __name__ == '__main__':
    main()
