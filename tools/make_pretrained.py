"""Write a local stand-in for a config's pretrained checkpoint.

Tests and the smoke check must not download weights, yet they should take
the path users take: weights loaded by the backbone's ``init_cfg`` (or the
detector's ``load_from``), then theta0 taken from them. This tool builds the
config's model (without loading anything), gives its weights deterministic
values unlike any random init, and writes them in the format the config's
loader reads:

- backbone (default): what ``init_cfg=dict(type='Pretrained', ...)`` loads.
  mmdet ResNets (``torchvision://resnet50``): torchvision's key names, a
  bare state dict; mmdet Swin with ``convert_weights=True``: the original
  Swin repository's key names under ``'model'`` (the inverse of mmdet's
  ``swin_converter``); everything else (mmseg ResNetV1c, Swin, MiT, ...): the
  backbone's own key names under ``'state_dict'``.
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
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, Optional

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import olor_mm  # noqa: F401,E402


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


def build_model(cfg, num_classes: Optional[int] = None):
    """The config's model, built with no weights loaded (nothing fetched)."""
    from mmengine.registry import DefaultScope
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('pretrained', None)
    model_cfg.pop('init_cfg', None)
    if 'backbone' in model_cfg:
        model_cfg.backbone.pop('init_cfg', None)
        model_cfg.backbone.pop('pretrained', None)
    if num_classes is not None:
        set_num_classes(model_cfg, num_classes)
    scope = cfg.get('default_scope', 'mmdet')
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
    batches in training mode with cumulative averaging fix that.
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
    for _ in range(batches):
        backbone(torch.randn(2, 3, size, size, generator=g))
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


def backbone_checkpoint(cfg, backbone, seed: int = 0):
    """(checkpoint object, expected backbone values in the model's names)."""
    values = pretrained_values(backbone, seed)
    bcfg = cfg.model.backbone
    kind = type(backbone).__name__
    source = str((bcfg.get('init_cfg') or {}).get('checkpoint', '')
                 or cfg.model.get('pretrained', '') or '')
    if kind == 'SwinTransformer' and bcfg.get('convert_weights', False):
        return dict(model=to_original_swin(values)), values
    if source.startswith('torchvision://'):
        return OrderedDict(values), values  # torchvision: a bare state dict
    return dict(state_dict=values), values


def write_pretrained(cfg,
                     out: str,
                     full_detector: bool = False,
                     num_classes: Optional[int] = None,
                     seed: int = 0) -> Dict[str, torch.Tensor]:
    """Write the checkpoint; returns the expected values by model name.

    The returned names are those of the fine-tuned model
    (``backbone.conv1.weight``, ...), for comparing theta0 with.
    """
    with torch.random.fork_rng():  # deterministic init, global RNG kept
        torch.manual_seed(seed)
        model = build_model(cfg, num_classes if full_detector else None)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    if full_detector:
        values = pretrained_values(model, seed)
        torch.save(
            dict(
                state_dict=values,
                meta=dict(note='olor-mm stand-in checkpoint')), out)
        return dict(values)
    ckpt, values = backbone_checkpoint(cfg, model.backbone, seed)
    torch.save(ckpt, out)
    return {f'backbone.{k}': v for k, v in values.items()}


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
