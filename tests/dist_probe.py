"""Imported by the data-parallel test's training processes (custom_imports).

``DumpReplicaHook`` writes each rank's parameters and theta0 (the anchor's
on the optimizer; DeepSpeed's flat partitions apart) (and the drift the
RollbackDriftHook logged last, if any)
after training to ``WORK_DIR/replica_rank{rank}.pth``, so the test can
compare the replicas.
"""
import contextlib
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from olor_mm.core.theta0 import find_anchor


@HOOKS.register_module(force=True)
class DumpReplicaHook(Hook):

    @staticmethod
    def _gathered(runner, model):
        """DeepSpeed's ZeRO-3 keeps each rank's part of the weights:
        gathered whole for the dump."""
        if type(getattr(runner, 'strategy', None)).__name__ != \
                'DeepSpeedStrategy':
            return contextlib.nullcontext()
        import deepspeed
        return deepspeed.zero.GatheredParameters(list(model.parameters()))

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        # the configs' plain OptimWrapper: the rollback is on the optimizer
        anchor = find_anchor(runner.optim_wrapper.optimizer)
        names = {id(p): n for n, p in model.named_parameters()}
        # DeepSpeed's ZeRO steps (and anchors) flat fp32 partitions
        partitions = [
            t.cpu() for p, t in zip(anchor.anchored_params, anchor.theta0)
            if id(p) not in names
        ]
        with self._gathered(runner, model):
            params = {
                n: p.detach().cpu().clone()
                for n, p in model.named_parameters()
            }
        torch.save(
            dict(
                params=params,
                theta0={
                    names[id(p)]: t.cpu()
                    for p, t in zip(anchor.anchored_params, anchor.theta0)
                    if id(p) in names
                },
                theta0_partitions=partitions,
                world_size=runner.world_size,
                drift={
                    k[len('train/drift.'):]: v.current()
                    for k, v in runner.message_hub.log_scalars.items()
                    if k.startswith('train/drift.')
                }), osp.join(runner.work_dir, f'replica_rank{get_rank()}.pth'))
