"""Imported by the data-parallel test's training processes (custom_imports).

``DumpReplicaHook`` writes each rank's parameters and the optim wrapper's
theta0 (and the drift the RollbackDriftHook logged last, if any) after
training to ``WORK_DIR/replica_rank{rank}.pth``, so the test can compare the
replicas.
"""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class DumpReplicaHook(Hook):

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        ow = runner.optim_wrapper
        names = {id(p): n for n, p in model.named_parameters()}
        torch.save(
            dict(
                params={
                    n: p.detach().cpu()
                    for n, p in model.named_parameters()
                },
                theta0={
                    names[id(p)]: t.cpu()
                    for p, t in zip(ow.anchored_params, ow.theta0)
                },
                world_size=runner.world_size,
                drift={
                    k[len('train/drift/'):]: v.current()
                    for k, v in runner.message_hub.log_scalars.items()
                    if k.startswith('train/drift/')
                }), osp.join(runner.work_dir, f'replica_rank{get_rank()}.pth'))
