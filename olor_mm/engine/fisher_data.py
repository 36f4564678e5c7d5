"""EWC's Fisher information from MMEngine configs: the upstream data and
model named in ``paramwise_cfg`` (:class:`olor_mm.core.penalty.EWCAnchor`
asks for it at the first step, when the weights are theta0).

``F`` is estimated on ``fisher_batches`` batches of ``fisher_dataloader``
(a dataloader config, e.g. the upstream config's ``train_dataloader``),
with ``fisher_model`` (the upstream model's config file or dict, with
``fisher_checkpoint``'s weights, its class-specific heads included) or,
without one, with the fine-tuned model itself at theta0; then divided by
its mean (``fisher_normalize``).
"""
import logging
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import MODELS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_checkpoint

from ..core.fisher import fisher_by_name, normalize_fisher
from ..core.rollback import is_real

#: paramwise_cfg keys of EWC's Fisher, with their defaults
FISHER_DEFAULTS = dict(
    fisher_dataloader=None,
    fisher_batches=50,
    fisher_model=None,
    fisher_checkpoint=None,
    fisher_normalize=True)


def check_fisher_cfg(cfg: dict, who: str = "method='ewc'") -> None:
    """Validate the Fisher keys before any model is built (``who``: what
    needs them, in messages)."""
    batches = cfg['fisher_batches']
    if (isinstance(batches, bool) or not is_real(batches) or batches < 1
            or int(batches) != batches):
        raise ValueError(
            f'paramwise_cfg.fisher_batches={batches!r} must be an integer '
            '>= 1 (the upstream batches F is estimated on).')
    if cfg['fisher_model'] is not None and cfg['fisher_checkpoint'] is None:
        raise ValueError(
            'paramwise_cfg.fisher_model is set without fisher_checkpoint: '
            'give the upstream model its weights '
            "(fisher_checkpoint='upstream.pth').")
    if cfg['fisher_dataloader'] is None:
        raise ValueError(
            f'paramwise_cfg.{who} needs the upstream data to estimate '
            'the Fisher information: set paramwise_cfg.fisher_dataloader '
            "(e.g. the upstream config's train_dataloader) and "
            'fisher_batches.')


def _upstream_model(model_cfg: Union[str, dict], checkpoint: str,
                    device) -> nn.Module:
    """The upstream model of ``fisher_model`` with ``fisher_checkpoint``'s
    weights, every weight trainable."""
    if isinstance(model_cfg, str):
        path = model_cfg
        if '::' in path:  # an installed package's config (mmdet::...)
            path = Config._get_cfg_path(path, '')[0]
        model_cfg = Config.fromfile(path).model
    model = MODELS.build(model_cfg)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
    model.to(device)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def fisher_source(model: nn.Module, cfg: dict, owner: str = 'EWC'):
    """``source(anchor) -> ({id(param): F}, scale)`` for the EWC anchor
    or the importance-weighted rollback.

    Args:
        model: The fine-tuned model (the constructor's).
        cfg: The Fisher keys (:data:`FISHER_DEFAULTS`; without
            ``fisher_normalize``, ``F`` is not divided by its mean).
        owner: Who asks, in messages.
    """
    model = model.module if is_model_wrapper(model) else model

    def source(anchor):
        names = {id(p): n for n, p in model.named_parameters()}
        anchored = anchor.anchored_params
        want = {names[id(p)]: p for p in anchored if id(p) in names}
        if len(want) != len(anchored):
            raise ValueError(
                f'{owner}: the optimizer steps tensors that are not the '
                "model's parameters (DeepSpeed's ZeRO steps flat "
                'partitions): the Fisher is estimated per parameter. Use '
                "plain paramwise_cfg.method='olor' or 'l2sp' under this "
                'engine.')
        dataloader = Runner.build_dataloader(cfg['fisher_dataloader'], seed=0)
        device = next(iter(want.values())).device
        upstream = model if cfg['fisher_model'] is None else \
            _upstream_model(cfg['fisher_model'], cfg['fisher_checkpoint'],
                            device)
        shapes = {n: p.shape for n, p in want.items()}
        by_name = fisher_by_name(
            upstream, dataloader, int(cfg['fisher_batches']),
            lambda n, p: n in shapes and p.shape == shapes[n])
        missing = [
            n for n, p in want.items() if n not in by_name and p.requires_grad
        ]
        if missing:
            raise ValueError(
                f'{owner}: {len(missing)} pretrained tensors of the '
                'fine-tuned model have no tensor of the same name and shape '
                f'in fisher_model (e.g. {missing[:3]}): narrow '
                'paramwise_cfg.pretrained_prefixes to the layers both '
                'models share, or set fisher_model=None to estimate F with '
                'the fine-tuned model itself.')
        fisher = [by_name.get(n, torch.zeros_like(p)) for n, p in want.items()]
        scale: Optional[float] = normalize_fisher(fisher) if cfg.get(
            'fisher_normalize') else None
        fmt = f'{scale:.3g}' if scale is not None else 'not normalised'
        print_log(
            f'{owner}: Fisher information of {len(fisher)} pretrained tensors '
            f'estimated on {cfg["fisher_batches"]} upstream batches (raw '
            f'mean {fmt}{"; divided by it" if scale else ""}).',
            logger='current',
            level=logging.INFO)
        return {id(p): f for p, f in zip(want.values(), fisher)}, scale

    return source
