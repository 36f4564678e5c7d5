"""Say loudly when theta0 would be weights no checkpoint was loaded into.

OLOR pulls every pretrained weight back toward ``theta0``, the weights at
training start. When nothing was loaded into the model before that (no
``load_from``, nothing resumed, no module whose ``init_cfg`` names a
checkpoint), ``theta0`` is the model's random initialisation and the
rollback pulls toward noise, without any error. The usual way there: a
requeue script's first launch with MMDetection's ``tools/train.py
--resume`` in an empty work dir, which clears ``load_from`` and finds
nothing to resume. This module wraps MMEngine's ``Runner.load_or_resume``
(whatever tool runs it) and logs a warning naming the cause and the fix
when an anchored optimizer (OLOR, L2-SP) is about to take ``theta0`` from
such weights, or when ``load_from`` left pretrained tensors unchanged (its
keys match none of them) and no ``init_cfg`` loads them either.
olor-mm's own ``tools/train.py --resume`` keeps ``load_from`` when there
is nothing to resume, so it does not get there.
"""
import logging

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from ..core.theta0 import checkpoint_note, find_anchor, note_checkpoint


def loads_a_checkpoint(module) -> bool:
    """Whether ``module``'s ``init_cfg`` names a checkpoint."""
    init = getattr(module, 'init_cfg', None)
    inits = init if isinstance(init, (list, tuple)) else [init]
    return any(isinstance(i, dict) and i.get('checkpoint') for i in inits)


def _norms(params) -> list:
    """One norm per tensor (a fingerprint: did a load change it?)."""
    if not params:
        return []
    with torch.no_grad():
        return [float(n) for n in torch._foreach_norm(params)]


def _load(original, runner) -> None:
    """``original(runner)``; a checkpoint without ``meta`` resumed is an
    error naming the file and the fix; no stale file named afterwards."""
    try:
        original(runner)
    except KeyError as err:
        if err.args != ('meta', ):
            raise
        raise KeyError(
            f'the checkpoint to resume{checkpoint_note()} holds no \'meta\' '
            '(iteration, optimizer state): it is a weights-only file, e.g. '
            'the pretrained checkpoint, and cannot be resumed. Fine-tune '
            'from it with load_from=<it> and resume=False (no --resume '
            'PATH); --resume alone resumes the latest checkpoint of '
            'work_dir.') from err
    finally:
        note_checkpoint(None)  # errors after this name no stale file


def warn_when_nothing_is_loaded() -> None:
    """Wrap ``Runner.load_or_resume`` with the checks. Idempotent."""

    if getattr(Runner.load_or_resume, '_olor', False):
        return
    original = Runner.load_or_resume

    def load_or_resume(self) -> None:
        before = self._has_loaded
        wrapper = self.optim_wrapper
        anchor = find_anchor(wrapper.optimizer) if isinstance(
            wrapper, OptimWrapper) else None
        if anchor is None or not anchor.active or anchor.theta0 is not None:
            return _load(original, self)
        params = anchor.anchored_params
        norms = _norms(params)
        _load(original, self)
        if anchor.theta0 is not None or before:  # resumed: theta0 restored
            return
        model = self.model.module if is_model_wrapper(
            self.model) else self.model
        if any(loads_a_checkpoint(m) for m in model.modules()):
            return
        if not self._has_loaded:
            resumed = (' --resume / resume=True found no checkpoint in '
                       f'{self.work_dir},' if self._resume else '')
            print_log(
                f'{anchor.owner}: no checkpoint was loaded into the model '
                f'(load_from is None,{resumed} and no init_cfg names a '
                'checkpoint): theta0, the weights every step is pulled back '
                'toward, is the model\'s random initialisation. Set '
                'load_from=<the pretrained checkpoint> or the backbone\'s '
                "init_cfg=dict(type='Pretrained', checkpoint=...). A first "
                'launch with MMDetection\'s or MMSegmentation\'s '
                'tools/train.py --resume clears load_from: olor-mm\'s '
                'tools/train.py keeps it when there is nothing to resume.',
                logger='current',
                level=logging.WARNING)
            return
        untouched = [
            p for p, a, b in zip(params, norms, _norms(params)) if a == b
        ]
        if not untouched:
            return
        names = {id(p): n for n, p in model.named_parameters()}
        first = [names.get(id(p), '?') for p in untouched[:3]]
        print_log(
            f'{anchor.owner}: load_from={self._load_from} left '
            f'{len(untouched)} of the {len(params)} pretrained tensors '
            f'unchanged (e.g. {", ".join(first)}): its keys do not match '
            'them (a backbone-only checkpoint has no \'backbone.\' '
            'prefix), and no init_cfg names a checkpoint, so their theta0 '
            'is the random initialisation. Load a backbone checkpoint '
            "through init_cfg=dict(type='Pretrained', checkpoint=..., "
            "prefix=...) or re-key it; MMEngine's 'missing keys' list "
            'above names them all.',
            logger='current',
            level=logging.WARNING)

    load_or_resume._olor = True
    Runner.load_or_resume = load_or_resume
