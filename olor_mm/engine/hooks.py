"""RollbackDriftHook: per-stage drift from the pretrained weights in the logs.

At every line the LoggerHook writes (every ``interval`` iterations as it
counts them: within the epoch in epoch-based runs, globally in
iteration-based ones; and at the end of an epoch), it writes, for each layer
group of the measured modules (:func:`olor_mm.core.drift.drift_groups`:
``stem``, each stage, ...)::

    train/drift/<group>    ||theta_G - theta0_G|| / ||theta0_G||
    train/lam_eff/<group>  mean lam_eff = lam_i * lr_t / lr_0 over the
                           group's trainable weights (parameter-weighted;
                           when a rollback is attached)

to MMEngine's message hub, so they appear in the text log, ``scalars.json``
and any visualisation backend (TensorBoard, ...) at the LoggerHook's
iterations. ``tools/analysis_tools/plot_drift.py`` draws them.
"""
import logging
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook, LoggerHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..core.attach import find_rollback
from ..core.drift import drift_groups
from ..core.norms import relative, relative_terms
from ..core.theta0 import find_anchor

DRIFT_KEY = 'olor_drift_theta0'


@HOOKS.register_module()
class RollbackDriftHook(Hook):
    """Log the relative drift ``||theta - theta0|| / ||theta0||`` per stage.

    ``theta0`` is the anchor's (OLOR's rollback or L2-SP, attached to the
    optimizer) where it anchors a tensor; the other measured tensors (the
    deepest layer with ``lam = 0``, frozen ones, or all of them under a plain
    OptimWrapper) are copied at the start of training and saved in the
    checkpoint under ``'olor_drift_theta0'``, so that a resumed run keeps
    measuring from the same start. Runs of OLOR and of plain fine-tuning
    therefore log the same groups and can be overlaid.

    The cost is two multi-tensor norms per group every ``interval``
    iterations (each measured tensor and its theta0 read once), nothing in
    between.

    Args:
        interval (int, optional): Compute every ``interval`` iterations.
            Defaults to None: the LoggerHook's interval (50 without one).
            Between two computations the LoggerHook repeats the last value,
            so a multiple of its interval is what to choose.
        prefixes (Sequence[str]): Top-level modules to measure, e.g.
            ``('backbone', 'neck')``. Defaults to ``('backbone',)``.

    Examples:
        >>> custom_hooks = [dict(type='RollbackDriftHook')]
    """

    priority = 'NORMAL'  # before the LoggerHook (BELOW_NORMAL) writes

    def __init__(self,
                 interval: Optional[int] = None,
                 prefixes: Sequence[str] = ('backbone', )):
        if interval is not None and (not isinstance(interval, int)
                                     or interval < 1):
            raise ValueError(f'RollbackDriftHook.interval={interval!r} must '
                             'be a positive integer (iterations) or None '
                             "(the LoggerHook's interval).")
        if isinstance(prefixes, str):
            prefixes = (prefixes, )
        if (not isinstance(prefixes, (list, tuple)) or not prefixes
                or not all(isinstance(p, str) and p for p in prefixes)):
            raise ValueError(
                f'RollbackDriftHook.prefixes={prefixes!r} must name the '
                "measured top-level modules, e.g. prefixes=('backbone',) or "
                "('backbone', 'neck').")
        self.interval = interval
        self.prefixes = tuple(prefixes)
        self._loaded: Optional[Dict[str, torch.Tensor]] = None
        self._own: Dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------ set-up
    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(DRIFT_KEY)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[DRIFT_KEY] = self._own

    def before_train(self, runner) -> None:
        """Pick the measured tensors and their theta0, build the groups."""
        logger = next((h for h in runner.hooks if isinstance(h, LoggerHook)),
                      None)
        if self.interval is None:
            self.interval = logger.interval if logger else 50
        # the LoggerHook's rule for the last iteration of an epoch
        self._ignore_last = logger.ignore_last if logger else True
        named = [(n, p) for n, p in self._model(runner).named_parameters()
                 if n.split('.', 1)[0] in self.prefixes]
        if not named:
            raise ValueError(
                f'RollbackDriftHook.prefixes={self.prefixes} match no '
                'parameter of the model (its top-level modules: '
                f'{[n for n, _ in self._model(runner).named_children()]}); '
                "name the measured modules, e.g. prefixes=('backbone',).")
        optimizer = runner.optim_wrapper.optimizer
        anchor = find_anchor(optimizer)
        anchors = {}
        if anchor is not None and anchor.theta0 is not None:
            anchors = {
                id(p): t
                for p, t in zip(anchor.anchored_params, anchor.theta0)
            }
        resumed = runner.iter > 0
        self._own = {}
        for n, p in named:
            if id(p) in anchors:
                continue
            if resumed:
                if self._loaded is None or n not in self._loaded:
                    raise RuntimeError(
                        f'RollbackDriftHook: training resumes at iteration '
                        f'{runner.iter} but the checkpoint has no start '
                        f'value of {n} under "{DRIFT_KEY}" (it was written '
                        'without this hook); remove the hook from '
                        'custom_hooks for this run, or start a new run.')
                self._own[n] = self._loaded[n].to(p.device, p.dtype)
            else:
                self._own[n] = p.detach().clone()
        self._names = [n for n, _ in named]
        self._params = dict(named)
        self._theta0 = {
            n: anchors.get(id(p), self._own.get(n))
            for n, p in named
        }
        self._groups = drift_groups(self._model(runner), self._names)
        rollback = find_rollback(optimizer)
        self._rollback = rollback if rollback and rollback.active else None
        self._lam_groups = self._lam_index(optimizer)
        # FSDP: each rank holds part of every tensor, norms are all-reduced
        self._sharded = get_world_size() > 1 and any(
            c.__name__ == 'FullyShardedDataParallel'
            for c in type(runner.model).__mro__)
        print_log(
            'RollbackDriftHook: drift of ' +
            ', '.join(f'{g} ({len(ns)} tensors)'
                      for g, ns in self._groups.items()) +
            f' every {self.interval} iterations',
            logger='current',
            level=logging.INFO)

    def _lam_index(self, optimizer) -> Optional[Dict[str, List]]:
        """(param group index, numel) of each group's trainable tensors."""
        if self._rollback is None:
            return None
        where = {
            id(p): gi
            for gi, g in enumerate(optimizer.param_groups) for p in g['params']
        }
        params = self._params
        return {
            group: [(where[id(params[n])], params[n].numel()) for n in names
                    if id(params[n]) in where]
            for group, names in self._groups.items()
        }

    # ----------------------------------------------------------- measure
    @torch.no_grad()
    def compute(self, runner) -> Dict[str, float]:
        """``drift/<group>`` and ``lam_eff/<group>`` values, now.

        Under a sharded model (FSDP) each rank holds part of every tensor:
        the squared norms are summed over ranks.
        """
        out = {}
        for group, names in self._groups.items():
            cur = [self._params[n] for n in names]
            ref = [self._theta0[n] for n in names]
            sq = torch.stack(relative_terms(cur, ref))
            if self._sharded:
                all_reduce(sq)
            out[f'drift/{group}'] = relative(float(sq[0]), float(sq[1]))
        if self._lam_groups is not None:
            lam = self._rollback.lam_effs()
            for group, members in self._lam_groups.items():
                total = sum(n for _, n in members)
                if total:
                    out[f'lam_eff/{group}'] = sum(lam[gi] * n
                                                  for gi, n in members) / total
        return out

    def _logs_now(self, runner, batch_idx: int) -> bool:
        """Whether the LoggerHook writes a line after this iteration.

        Its rule, in both loop kinds: every ``interval`` iterations counted
        by ``batch_idx`` (the iteration within the epoch in an epoch-based
        loop, the global one in an iteration-based loop), and the last
        iteration of an epoch of the train dataloader (in an
        iteration-based loop, the line it writes once the dataloader's
        length is reached).
        """
        if self.every_n_inner_iters(batch_idx, self.interval):
            return True
        return self.end_of_epoch(
            runner.train_dataloader,
            batch_idx) and (not self._ignore_last
                            or len(runner.train_dataloader) <= self.interval)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self._logs_now(runner, batch_idx):
            for key, value in self.compute(runner).items():
                runner.message_hub.update_scalar(f'train/{key}', value)
