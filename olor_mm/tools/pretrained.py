"""Write local stand-ins for a config's pretrained checkpoints.

Tests and the smoke check must not download weights, yet they should take
the path users take: weights loaded by each module's ``init_cfg`` (or the
detector's ``load_from``), then theta0 taken from them. This tool builds the
config's model (without loading anything), gives the weights of each module
that loads a checkpoint deterministic values unlike any random init, and
writes them in a format that module's own initialisation reads back:

- every ``init_cfg`` with a ``checkpoint`` (any type: MMEngine's
  ``Pretrained``, with or without ``prefix``, or a backbone's own loader
  such as PVT's or PIDNet's), also nested (STDC's ``backbone_cfg``), and a
  segmentor's ``model.pretrained``: the candidate formats (mmdet Swin with
  ``convert_weights``: the original Swin repository's names under
  ``'model'``; ``torchvision://``: a bare state dict; then the module's own
  names, with the ``prefix`` of the ``init_cfg``, under ``'state_dict'``,
  bare, or under ``'model'``) are written in turn and the first that the
  module's ``init_weights()`` loads exactly is kept, so the stand-in is
  read as the real checkpoint would be; none fitting is an error;
- ``--full-detector``: the whole model for ``load_from``, MMEngine's format
  (``state_dict`` with full names, ``meta``); ``--num-classes N`` builds the
  class-specific layers for N classes (80: a COCO-pretrained detector).

Example::

    python tools/make_pretrained.py \\
        configs/mmdet/mask-rcnn_r50_fpn_olor_1x_coco.py \\
        --out work_dirs/r50_pretrained.pth
"""
import argparse
import copy
import logging
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional

import torch

import olor_mm  # noqa: F401


def set_num_classes(model_cfg, num_classes: int) -> None:
    """``num_classes`` of every head in a model config, in place."""
    if isinstance(model_cfg, dict):
        for key, value in model_cfg.items():
            if key == 'num_classes' and isinstance(value, int):
                model_cfg[key] = num_classes
            else:
                set_num_classes(value, num_classes)
    elif isinstance(model_cfg, (list, tuple)):
        for value in model_cfg:
            set_num_classes(value, num_classes)


def build_model(cfg,
                num_classes: Optional[int] = None,
                keep_init: bool = False):
    """The config's model, built with no weights loaded (nothing fetched;
    with ``keep_init`` the modules keep their ``init_cfg``, still unused
    until ``init_weights()``)."""
    from mmengine.registry import DefaultScope
    model_cfg = copy.deepcopy(cfg.model)
    if not keep_init:
        model_cfg.pop('pretrained', None)
        model_cfg.pop('init_cfg', None)
        if 'backbone' in model_cfg:
            model_cfg.backbone.pop('init_cfg', None)
            model_cfg.backbone.pop('pretrained', None)
    if num_classes is not None:
        set_num_classes(model_cfg, num_classes)
    # a plain MMEngine project sets default_scope=None: MMEngine's registry
    scope = cfg.get('default_scope', 'mmdet') or 'mmengine'
    registry = __import__(f'{scope}.registry', fromlist=['MODELS'])
    with DefaultScope.overwrite_default_scope(scope):
        return registry.MODELS.build(model_cfg)


@torch.no_grad()
def calibrate_norms(backbone,
                    seed: int = 0,
                    size: int = 64,
                    batches: int = 3) -> None:
    """Give BatchNorm layers the running statistics of their inputs.

    Real pretrained backbones come with calibrated statistics; random
    weights with the default ones (mean 0, variance 1) make activations
    explode through 50 layers under ``norm_eval=True``. A few random
    batches in training mode with cumulative averaging fix that. A module
    that does not take a ``size`` x ``size`` image keeps the default
    statistics.
    """
    from torch.nn.modules.batchnorm import _BatchNorm
    norms = [m for m in backbone.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        return
    g = torch.Generator().manual_seed(seed + 1)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    mode = backbone.training
    backbone.train()
    try:
        for _ in range(batches):
            backbone(torch.randn(2, 3, size, size, generator=g))
    except (RuntimeError, TypeError, ValueError, AssertionError):
        for m in norms:  # not an image backbone: the default statistics
            m.reset_running_stats()
    backbone.train(mode)


@torch.no_grad()
def pretrained_values(module,
                      seed: int = 0) -> 'OrderedDict[str, torch.Tensor]':
    """The module's state dict with every float parameter moved off its
    init, and calibrated BatchNorm statistics.

    Each floating parameter gets ``x + 0.02 * N(0, 1)`` from a generator
    seeded with ``seed``: deterministic, and unlike the random init that a
    failed load would leave in place.
    """
    from mmengine.model import revert_sync_batchnorm
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        if p.is_floating_point():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    module = revert_sync_batchnorm(module)  # SyncBN runs only distributed
    calibrate_norms(getattr(module, 'backbone', module), seed)
    return OrderedDict((k, v.clone()) for k, v in module.state_dict().items())


def _swin_unfold_order(x: torch.Tensor) -> torch.Tensor:
    """Inverse of mmdet's ``correct_unfold_{reduction,norm}_order``."""
    if x.dim() == 2:  # reduction: (out, in) with in = 4 * C
        out_ch, in_ch = x.shape
        x = x.reshape(out_ch, in_ch // 4, 4).transpose(1, 2)
        return x[:, [0, 2, 1, 3], :].reshape(out_ch, in_ch)
    in_ch = x.shape[0]
    x = x.reshape(in_ch // 4, 4).transpose(0, 1)
    return x[[0, 2, 1, 3], :].reshape(in_ch)


def to_original_swin(state: Dict[str, torch.Tensor]) -> 'OrderedDict':
    """mmdet SwinTransformer keys -> the Swin repository's (inverse of
    ``mmdet.models.backbones.swin.swin_converter``)."""
    out = OrderedDict()
    for k, v in state.items():
        if k.startswith('stages.'):
            k = k.replace('stages.', 'layers.', 1)
            k = k.replace('attn.w_msa.', 'attn.')
            k = k.replace('ffn.layers.0.0.', 'mlp.fc1.')
            k = k.replace('ffn.layers.1.', 'mlp.fc2.')
            if '.downsample.' in k and ('reduction.' in k or 'norm.' in k):
                v = _swin_unfold_order(v)
        elif k.startswith('patch_embed.projection'):
            k = k.replace('projection', 'proj', 1)
        out[k] = v
    return out


#: schemes of remote checkpoints MMEngine resolves
REMOTE = ('http://', 'https://', 'torchvision://', 'open-mmlab://',
          'openmmlab://', 'mmcls://', 'pavi://', 's3://')


def checkpoint_keys(cfg) -> Dict[str, str]:
    """``{config key: checkpoint}`` of every checkpoint the model loads:
    ``load_from``, ``model.pretrained`` and each ``init_cfg`` with a
    ``checkpoint`` (keys as ``--cfg-options`` writes them; an ``init_cfg``
    list by index)."""
    found = {}

    def walk(node, key):
        if isinstance(node, dict):
            init = node.get('init_cfg')
            inits = init if isinstance(init, (list, tuple)) else [init]
            for k, item in enumerate(inits):
                if isinstance(item, dict) and item.get('checkpoint'):
                    where = (f'{key}.init_cfg'
                             if not isinstance(init, (list, tuple)) else
                             f'{key}.init_cfg.{k}')
                    found[f'{where}.checkpoint'] = item['checkpoint']
            for k, v in node.items():
                if k != 'init_cfg':
                    walk(v, f'{key}.{k}')
        elif isinstance(node, (list, tuple)):
            for k, v in enumerate(node):
                walk(v, f'{key}.{k}')

    if cfg.get('load_from'):
        found['load_from'] = cfg.load_from
    if cfg.model.get('pretrained'):
        found['model.pretrained'] = cfg.model.pretrained
    walk(cfg.model, 'model')
    return found


def set_key(cfg, key: str, value) -> None:
    """``cfg.<key> = value`` for a dotted key (list items by index)."""
    *path, last = key.split('.')
    node = cfg
    for part in path:
        node = node[int(part)] if isinstance(node, (list, tuple)) else \
            node[part]
    if isinstance(node, (list, tuple)):
        node[int(last)] = value
    else:
        node[last] = value


def _owners(model, checkpoint: str):
    """``(name, module)`` of the modules whose ``init_cfg`` loads
    ``checkpoint``."""
    out = []
    for name, module in model.named_modules():
        init = getattr(module, 'init_cfg', None)
        inits = init if isinstance(init, (list, tuple)) else [init]
        if any(
                isinstance(i, dict) and i.get('checkpoint') == checkpoint
                for i in inits):
            out.append((name, module))
    return out


def _candidates(module, values, init: dict, checkpoint: str, cfg):
    """Checkpoint objects a module's initialisation may read, in order."""
    bcfg = cfg.model.get('backbone', {})
    if (type(module).__name__ == 'SwinTransformer'
            and bcfg.get('convert_weights', False)):
        yield dict(model=to_original_swin(values))
    prefix = init.get('prefix') or ''
    if prefix and not prefix.endswith('.'):  # as MMEngine reads it
        prefix += '.'
    named = OrderedDict((prefix + k, v) for k, v in values.items())
    if str(checkpoint).startswith('torchvision://'):
        yield named
    yield dict(state_dict=named)
    yield named
    yield dict(model=named)


def _reads_back(cfg, checkpoint: str, path: str, owner: str, values) -> bool:
    """Whether ``owner``'s ``init_weights()`` loads ``path`` exactly."""
    from mmengine.logging import MMLogger
    cfg = copy.deepcopy(cfg)
    for key, value in checkpoint_keys(cfg).items():
        if value == checkpoint:
            set_key(cfg, key, path)
    model = build_model(cfg, keep_init=True)
    module = dict(model.named_modules())[owner]
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)  # the loader's missing-keys report
    try:
        module.init_weights()
    except (AssertionError, KeyError, RuntimeError, ValueError):
        return False  # e.g. "backbone. is not in the pretrained model"
    finally:
        logger.setLevel(level)
    params = dict(module.named_parameters())
    return bool(params) and all(
        k in values and torch.equal(p.detach(), values[k])
        for k, p in params.items())


def write_stand_in(cfg,
                   checkpoint: str,
                   out: str,
                   seed: int = 0) -> Dict[str, torch.Tensor]:
    """A stand-in for ``checkpoint`` (loaded by some module's ``init_cfg``,
    or ``model.pretrained``) at ``out``, in a format its loader reads.

    Returns:
        dict: the values it gives (parameters and buffers), by the model's
        names.

    Raises:
        RuntimeError: when no module loads ``checkpoint`` or none of the
            candidate formats is read back exactly.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_model(cfg, keep_init=True)
    owners = _owners(model, checkpoint)
    if not owners:
        raise RuntimeError(f'no module of the model loads {checkpoint} '
                           'through its init_cfg.')
    owner, module = owners[0]
    init = next(
        i for i in (module.init_cfg if isinstance(module.init_cfg, (
            list, tuple)) else [module.init_cfg])
        if isinstance(i, dict) and i.get('checkpoint') == checkpoint)
    values = pretrained_values(module, seed)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    for ckpt in _candidates(module, values, init, checkpoint, cfg):
        torch.save(ckpt, out)
        if _reads_back(cfg, checkpoint, out, owner, values):
            dot = f'{owner}.' if owner else ''
            return {dot + k: v for k, v in values.items()}
    raise RuntimeError(
        f'{type(module).__name__} ({owner or "the model"}) reads none of the '
        f'stand-in formats of {checkpoint} back (state_dict, bare, model, '
        'with the init_cfg prefix): its loader is not one tools/'
        'make_pretrained.py knows.')


def write_pretrained(cfg,
                     out: str,
                     full_detector: bool = False,
                     num_classes: Optional[int] = None,
                     seed: int = 0) -> Dict[str, torch.Tensor]:
    """Write the checkpoint; returns the expected values by model name.

    With ``full_detector``: the whole model (for ``load_from``); else the
    stand-in of the backbone's pretrained checkpoint (its ``init_cfg`` or
    the segmentor's ``model.pretrained``). The returned names are those of
    the fine-tuned model (``backbone.conv1.weight``, ...), for comparing
    theta0 with.
    """
    if full_detector:
        with torch.random.fork_rng():  # deterministic init, global RNG kept
            torch.manual_seed(seed)
            model = build_model(cfg, num_classes)
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        values = pretrained_values(model, seed)
        torch.save(
            dict(
                state_dict=values,
                meta=dict(note='olor-mm stand-in checkpoint')), out)
        return dict(values)
    keys = {
        k: v
        for k, v in checkpoint_keys(cfg).items()
        if k == 'model.pretrained' or k.startswith('model.backbone.')
    }
    if not keys:
        raise RuntimeError(
            f'{cfg.filename}: the backbone loads no checkpoint (no init_cfg '
            'with a checkpoint, no model.pretrained).')
    return write_stand_in(cfg, next(iter(keys.values())), out, seed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--out', required=True, help='checkpoint path')
    parser.add_argument(
        '--full-detector',
        action='store_true',
        help='the whole model (for load_from) instead of '
        'the backbone (for init_cfg)')
    parser.add_argument(
        '--num-classes',
        type=int,
        default=None,
        help='with --full-detector: build the heads for '
        'this many classes (80 = a COCO detector)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    from mmengine.config import Config
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    values = write_pretrained(cfg, args.out, args.full_detector,
                              args.num_classes, args.seed)
    print(f'{args.out}: {len(values)} tensors')


if __name__ == '__main__':
    main()
