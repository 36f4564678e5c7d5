"""The anchored method ``paramwise_cfg.method`` chooses, attached to the
torch optimizer the constructor built, with what MMEngine tells it
(:mod:`.mmengine_context`):

- ``'olor'``: OLOR's rollback (:func:`olor_mm.attach_rollback`), after
  every update ``theta_t = theta_hat_t + lam_eff * (theta0 - theta_hat_t)``
  on the groups with ``rollback = lam_i > 0``; with ``importance='fisher'``
  the pull of each element is ``lam_eff * w``, ``w`` from the upstream
  Fisher (:mod:`olor_mm.core.importance`);
- ``'l2sp'``: the L2-SP penalty (:class:`olor_mm.core.penalty.L2SPAnchor`),
  ``g_S += alpha (w_S - w0_S)``, ``g_new += beta w_new`` before every
  update;
- ``'ewc'``: the EWC penalty (:class:`olor_mm.core.penalty.EWCAnchor`),
  ``g_S += alpha F (w_S - w0_S)``, with ``F`` estimated at the first step
  from ``fisher_dataloader`` (:mod:`.fisher_data`).

The anchor lives on the optimizer, so any wrapper type carries it.
"""
import logging

import torch.nn as nn
from mmengine.logging import print_log

from ..core.attach import RollbackHandle
from ..core.importance import ImportanceRollbackHandle
from ..core.penalty import EWCAnchor, L2SPAnchor
from .fisher_data import fisher_source
from .mmengine_context import connect

#: how each method is named in messages
NAMES = dict(olor='OLOR rollback', l2sp='L2-SP', ewc='EWC')


def attach(method: str, optimizer, cfg: dict, setup: dict, model: nn.Module):
    """Attach ``method``'s anchor to ``optimizer``; returns it.

    Args:
        method: ``'olor'``, ``'l2sp'`` or ``'ewc'``.
        optimizer: The torch optimizer over the tagged groups.
        cfg: The method's keys (:data:`.config_keys.METHOD_DEFAULTS`,
            completed with the defaults).
        setup: The keys that chose and numbered the anchored tensors,
            saved with theta0 and compared on resume.
        model: The model being fine-tuned.
    """
    if method == 'olor' and cfg['importance'] is not None:
        anchor = ImportanceRollbackHandle(
            optimizer,
            fisher_source(model, cfg, owner='importance-weighted rollback'),
            importance_norm=cfg['importance_norm'],
            scale_with_lr=cfg['scale_with_lr'],
            anchor_dtype=cfg['anchor_dtype'],
            warn_if_inert=False,
            setup=setup)
    elif method == 'olor':
        anchor = RollbackHandle(
            optimizer,
            scale_with_lr=cfg['scale_with_lr'],
            anchor_dtype=cfg['anchor_dtype'],
            warn_if_inert=False,
            setup=setup)
    elif method == 'l2sp':
        anchor = L2SPAnchor(
            optimizer,
            alpha=cfg['alpha'],
            beta=cfg['beta'],
            anchor_dtype=cfg['anchor_dtype'],
            setup=setup)
    else:
        anchor = EWCAnchor(
            optimizer,
            fisher_source(model, cfg),
            alpha=cfg['alpha'],
            beta=cfg['beta'],
            anchor_dtype=cfg['anchor_dtype'],
            setup=setup)
    if method != 'olor':
        anchored = [p for p in anchor.selected_params() if p.requires_grad]
        new = [
            p for g in optimizer.param_groups if g.get('layer_id') is None
            for p in g['params'] if p.requires_grad
        ]
        print_log(
            f'{NAMES[method]}: alpha={anchor.alpha} on {len(anchored)} '
            'pretrained tensors '
            f'({sum(p.numel() for p in anchored):,} parameters, every '
            'pretrained layer: the rollback_* keys are unused), beta='
            f'{anchor.beta} on {len(new)} new tensors.',
            logger='current',
            level=logging.INFO)
    connect(anchor, model)
    return anchor
