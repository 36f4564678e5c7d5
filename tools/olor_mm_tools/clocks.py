"""Synchronised wall times of a training run: its iterations, optimizer
steps and OLOR rollbacks. The one clock of ``benchmarks/train_speed.py``
and ``benchmarks/bench_step.py``."""
import time

import torch
from mmengine.hooks import Hook

import olor_mm


def sync() -> None:
    """Wait for the GPU, so that a wall time covers its work."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Clocks:
    """Synchronised wall times of iterations, optimizer steps, rollbacks."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.iters, self.steps, self.rollbacks = [], [], []
        self.count = 0

    def timing(self) -> bool:
        return self.count >= self.warmup

    def attach(self, runner):
        """Time every iteration of ``runner``, and from ``before_train``
        (after every other hook's, so a rollback another hook wrapped is
        timed as wrapped) its optimizer's steps and rollbacks."""
        clocks = self

        class IterClock(Hook):
            priority = 'VERY_HIGH'

            def before_train_iter(self, runner, batch_idx, data_batch=None):
                sync()
                clocks._t = time.perf_counter()

            def after_train_iter(self,
                                 runner,
                                 batch_idx,
                                 data_batch=None,
                                 outputs=None):
                sync()
                if clocks.timing():
                    clocks.iters.append(time.perf_counter() - clocks._t)
                clocks.count += 1

        class StepClock(Hook):
            priority = 'VERY_LOW'

            def before_train(self, runner):
                clocks.attach_optimizer(runner.optim_wrapper.optimizer)

        runner.register_hook(IterClock())
        runner.register_hook(StepClock())

    def attach_optimizer(self, optimizer):
        """Step time (rollback included) and the rollback's own."""

        def pre(opt, args, kwargs):
            sync()
            self._s = time.perf_counter()

        def post(opt, args, kwargs):
            sync()
            if self.timing():
                self.steps.append(time.perf_counter() - self._s)

        optimizer.register_step_pre_hook(pre)
        optimizer.register_step_post_hook(post)  # after the rollback's
        handle = olor_mm.find_rollback(optimizer)
        if handle is not None and handle.active:
            rollback = handle.rollback

            def timed():
                sync()
                t = time.perf_counter()
                rollback()
                sync()
                if self.timing():
                    self.rollbacks.append(time.perf_counter() - t)

            handle.rollback = timed
