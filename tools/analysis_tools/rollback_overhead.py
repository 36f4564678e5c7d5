"""Time a real training run and the share of it the rollback takes.

Builds the Runner of CONFIG exactly as tools/train.py does, wraps the OLOR
wrapper's ``rollback`` with a synchronised timer, trains, and prints
iterations per second and the rollback's share of the iteration time.

Example::

    python tools/analysis_tools/rollback_overhead.py \\
        configs/demo/mask-rcnn_r18-tiny_demo-downstream_olor.py \\
        --iters 300 --amp --cfg-options load_from=work_dirs/demo/upstream/iter_1500.pth
"""
import argparse
import json
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
import olor_mm  # noqa: E402
from olor_mm.cli import enable_amp  # noqa: E402


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class IterClock(Hook):
    """Wall time of every train iteration, synchronised, after warm-up."""

    def __init__(self, warmup):
        self.warmup = warmup
        self.times = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        _sync()
        self._t = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        _sync()
        if runner.iter >= self.warmup:
            self.times.append(time.perf_counter() - self._t)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--amp', action='store_true')
    parser.add_argument('--work-dir', default='work_dirs/rollback_overhead')
    parser.add_argument('--json', help='write the figures to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir
    cfg.train_cfg.max_iters = args.iters
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None  # no eval
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=-1, save_last=False)
    cfg.default_hooks.logger.interval = 50
    if args.amp:
        enable_amp(cfg)
    runner = Runner.from_cfg(cfg)
    clock = IterClock(args.warmup)
    runner.register_hook(clock)

    rollback_times = []
    state = {}

    def timed_rollback(orig):
        def wrapper():
            _sync()
            t = time.perf_counter()
            orig()
            _sync()
            if runner.iter >= args.warmup:
                rollback_times.append(time.perf_counter() - t)
        return wrapper

    def patch(runner):
        ow = runner.optim_wrapper
        handle = olor_mm.find_rollback(ow.optimizer)
        if handle is None or not handle.active:
            raise SystemExit(f'{type(ow).__name__} does not roll back (no '
                             'rollback attached to its optimizer)')
        handle.rollback = timed_rollback(handle.rollback)
        state['wrapper'] = type(ow).__name__
        state['rolled'] = sum(p.numel() for p in handle.anchored_params)

    class Patch(Hook):
        priority = 'VERY_HIGH'

        def before_train(self, runner):
            patch(runner)

    runner.register_hook(Patch())
    runner.train()
    it = sorted(clock.times)[len(clock.times) // 2]
    rb = sorted(rollback_times)[len(rollback_times) // 2]
    result = dict(
        config=osp.basename(args.config), device=str(
            torch.cuda.get_device_name() if torch.cuda.is_available()
            else 'cpu'),
        wrapper=state['wrapper'], rolled_params=state['rolled'],
        iters_timed=len(clock.times), median_iter_s=it,
        iters_per_s=1.0 / it, median_rollback_s=rb,
        rollback_share=rb / it)
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
