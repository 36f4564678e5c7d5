"""RollbackDriftHook: per-stage drift from the pretrained weights in the logs.

At every line the LoggerHook writes (every ``interval`` iterations as it
counts them: within the epoch in epoch-based runs, globally in
iteration-based ones; and at the end of an epoch), it writes, for each layer
group of the measured modules (:func:`olor_mm.core.drift.drift_groups`:
``stem``, each stage, ...)::

    drift.<group>    ||theta_G - theta0_G|| / ||theta0_G||
    lam_eff.<group>  mean lam_eff = lam_i * lr_t / lr_0 over the group's
                     trainable weights (parameter-weighted; when a
                     rollback is attached)

to MMEngine's message hub (as ``train/drift.<group>``, ...), so they appear
in the text log, the json log (``scalars.json``) and any visualisation
backend (TensorBoard, ...) at the LoggerHook's iterations, and one line of
its own with three significant digits (MMEngine's text log prints four
decimals, ``0.0000`` early in a real run). The names hold no ``/``:
MMDetection's ``analyze_logs.py`` reads a key with ``/`` as a validation
metric, files it under the part after the ``/`` and skips the rest of the
line (``step``, ``loss``...). ``tools/analysis_tools/plot_drift.py`` draws
them; :func:`logged` reads a json log row, of this spelling and of the
``drift/<group>`` one of olor-mm 0.2.
"""
import logging
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import CheckpointHook, Hook, LoggerHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..core.attach import RollbackHandle
from ..core.drift import drift_groups
from ..core.norms import relative, relative_terms
from ..core.theta0 import find_anchor
from .config_keys import check_constructor

DRIFT_KEY = 'olor_drift_theta0'
#: the logged names: ``drift.<group>``, ``lam_eff.<group>``
KINDS = ('drift', 'lam_eff')


def logged(row: dict, kind: str = 'drift') -> Dict[str, float]:
    """``{group: value}`` of ``kind`` (``'drift'`` or ``'lam_eff'``) in one
    row of a json log (``scalars.json``): ``drift.<group>``, or the
    ``drift/<group>`` of logs written by olor-mm 0.2."""
    assert kind in KINDS, kind
    out = {}
    for key, value in row.items():
        for sep in ('.', '/'):
            if key.startswith(kind + sep):
                out[key[len(kind) + 1:]] = value
    return out


def weights_only_refusal(path, lacks=('meta', )) -> str:
    """Why a weights-only checkpoint (published, or a pretrained one)
    cannot be resumed, and what to do instead."""
    return (f'the checkpoint to resume ({path}) holds no '
            f'{" or ".join(repr(k) for k in lacks)} (iteration, optimizer '
            'state): it is a weights-only file, e.g. the pretrained '
            'checkpoint or a published one, and cannot be resumed. '
            'Fine-tune from it with load_from=<it> and resume=False (no '
            '--resume PATH); --resume alone resumes the latest checkpoint '
            'of work_dir.')


def warn_if_unresumable(runner, anchored: bool) -> None:
    """Say at the start that this run's checkpoints cannot be resumed when
    its checkpoint hook saves no optimizer state: theta0 lives there."""
    hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)),
                None)
    if anchored and hook is not None and not hook.save_optimizer:
        print_log(
            'default_hooks.checkpoint.save_optimizer=False: the checkpoints '
            'of this run hold no optimizer state, and so no theta0 (the '
            'pretrained weights the fine-tune is anchored to): a resume of '
            'this run will be refused. Set save_optimizer=True to be able '
            'to resume it.',
            logger='current',
            level=logging.WARNING)


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
        """Keep the start values saved with the checkpoint; refuse to resume
        a weights-only file (MMEngine would stop on ``KeyError: 'meta'``)."""
        self._loaded = checkpoint.get(DRIFT_KEY)
        if (runner.cfg.get('resume') and 'meta' not in checkpoint
                and 'state_dict' in checkpoint):
            raise KeyError(weights_only_refusal(runner.cfg.get('load_from')))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[DRIFT_KEY] = self._own

    @staticmethod
    def _optimizers(runner) -> list:
        """The torch optimizers of the runner's wrapper (each member of an
        ``OptimWrapperDict``)."""
        wrapper = runner.optim_wrapper
        wrappers = wrapper.values() if hasattr(wrapper,
                                               'values') else [wrapper]
        return [
            w.optimizer for w in wrappers
            if getattr(w, 'optimizer', None) is not None
        ]

    def before_train(self, runner) -> None:
        """Pick the measured tensors and their theta0, build the groups.

        A tensor an anchor holds (or will hold from its first update: its
        group is anchored) is measured from the anchor's theta0, read when
        the line is written; any other is copied now (saved in the
        checkpoint, restored on resume).
        """
        cfg = getattr(runner, 'cfg', None)
        if cfg is not None:  # OLOR keys under another constructor: refused
            check_constructor(cfg.get('optim_wrapper'))
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
        anchors = [find_anchor(o) for o in self._optimizers(runner)]
        anchors = [a for a in anchors if a is not None]
        warn_if_unresumable(runner, bool(anchors))
        self._anchor_of = {
            id(p): a
            for a in anchors for p in a.anchored_params
        }
        resumed = runner.iter > 0
        self._own = {}
        for n, p in named:
            if id(p) in self._anchor_of:
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
        self._groups = drift_groups(self._model(runner), self._names)
        self._lam_groups = self._lam_index(anchors)
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

    def _theta0(self, name: str) -> torch.Tensor:
        p = self._params[name]
        anchor = self._anchor_of.get(id(p))
        if anchor is None:
            return self._own[name]
        theta0 = anchor.theta0_of(p)
        return p.detach() if theta0 is None else theta0  # before step 1

    def _lam_index(self, anchors) -> Optional[Dict[str, List]]:
        """(rollback, param group index, numel) of each group's tensors."""
        where = {}
        for a in anchors:
            if isinstance(a, RollbackHandle) and a.active:
                for gi, g in enumerate(a.optimizer.param_groups):
                    for p in g['params']:
                        where[id(p)] = (a, gi)
        if not where:
            return None
        params = self._params
        return {
            group: [(*where[id(params[n])], params[n].numel()) for n in names
                    if id(params[n]) in where]
            for group, names in self._groups.items()
        }

    # ----------------------------------------------------------- measure
    @torch.no_grad()
    def compute(self, runner) -> Dict[str, float]:
        """``drift.<group>`` and ``lam_eff.<group>`` values, now.

        Under a sharded model (FSDP) each rank holds part of every tensor:
        the squared norms are summed over ranks.
        """
        out = {}
        for group, names in self._groups.items():
            cur = [self._params[n] for n in names]
            ref = [self._theta0(n) for n in names]
            sq = torch.stack(relative_terms(cur, ref))
            if self._sharded:
                all_reduce(sq)
            out[f'drift.{group}'] = relative(float(sq[0]), float(sq[1]))
        if self._lam_groups is not None:
            lams = {}
            for group, members in self._lam_groups.items():
                total = sum(n for _, _, n in members)
                if total:
                    out[f'lam_eff.{group}'] = sum(
                        lams.setdefault(a, a.lam_effs())[gi] * n
                        for a, gi, n in members) / total
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

    def _check_before_save(self, runner, by_epoch: bool) -> None:
        """Where the CheckpointHook is about to save (its own rule), refuse
        non-finite weights first: MMEngine's hook removes the oldest
        checkpoint before it writes (``max_keep_ckpts``), so the anchor's
        own refusal while saving would come after that removal."""
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)),
                    None)
        if hook is None or hook.by_epoch != by_epoch:
            return
        if by_epoch:
            saves = self.every_n_epochs(
                runner, hook.interval,
                hook.save_begin) or (hook.save_last
                                     and self.is_last_train_epoch(runner))
        else:
            saves = self.every_n_train_iters(
                runner, hook.interval,
                hook.save_begin) or (hook.save_last
                                     and self.is_last_train_iter(runner))
        if saves:
            for optimizer in self._optimizers(runner):
                anchor = find_anchor(optimizer)
                if anchor is not None:
                    anchor.check_finite()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self._logs_now(runner, batch_idx):
            values = self.compute(runner)
            for key, value in values.items():
                runner.message_hub.update_scalar(f'train/{key}', value)
            print_log(
                f'RollbackDriftHook [{runner.iter + 1}] ' +
                '  '.join(f'{k}: {v:.3g}' for k, v in values.items()),
                logger='current',
                level=logging.INFO)
        self._check_before_save(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        self._check_before_save(runner, by_epoch=True)
