"""Every backbone class MMDetection and MMSegmentation export, numbered.

Each class is built from an upstream config (the backbone alone, no
weights) and numbered by olor-mm's engine. The expectations do not come
from the code under test: a forward pass with hooks gives the order in
which modules run, and a regular expression per class, written from the
architecture, names the blocks on its main path. Then:

- the stem (the first module the forward pass runs) is layer 0;
- every main-path block has a layer of its own (no two share one);
- the blocks' layers increase in the order the forward pass runs them;
- for ten classes, the number of layers counted by hand from the
  architecture's definition (in the comments).
"""
import copy
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from paths import ROOT

import olor_mm  # noqa: F401
from olor_mm.layers.block_discovery import weight_layers
from olor_mm.layers.numbering import number_module


def _config_dir(scope):
    return osp.join(osp.dirname(__import__(scope).__file__), '.mim', 'configs')


#: (scope, class, config path or backbone dict, main-path block regex,
#:  layers counted by hand or None, forward input size)
CASES = [
    # ResNet-50: stem + 3 + 4 + 6 + 3 blocks = 17
    ('mmdet', 'ResNet', 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
     r'^layer\d+\.\d+$', 17, 64),
    ('mmdet', 'ResNetV1d', dict(type='ResNetV1d',
                                depth=50), r'^layer\d+\.\d+$', 17, 64),
    ('mmdet', 'ResNeXt', 'faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py',
     r'^layer\d+\.\d+$', None, 64),
    ('mmdet', 'Res2Net', 'res2net/faster-rcnn_res2net-101_fpn_2x_coco.py',
     r'^layer\d+\.\d+$', None, 64),
    ('mmdet', 'ResNeSt',
     'resnest/mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco.py',
     r'^layer\d+\.\d+$', None, 64),
    ('mmdet', 'RegNet', 'regnet/retinanet_regnetx-800MF_fpn_1x_coco.py',
     r'^layer\d+\.\d+$', None, 64),
    ('mmdet', 'DetectoRS_ResNet', 'detectors/htc_r50-rfp_1x_coco.py',
     r'^layer\d+\.\d+$', None, 64),
    ('mmdet', 'DetectoRS_ResNeXt',
     dict(type='DetectoRS_ResNeXt', depth=50, groups=32,
          base_width=4), r'^layer\d+\.\d+$', None, 64),
    ('mmdet', 'TridentResNet', 'tridentnet/tridentnet_r50-caffe_1x_coco.py',
     r'^layer\d+\.\d+$', None, 64),
    # SSD300's VGG-16: its 15 convolutions, one layer each (no blocks)
    ('mmdet', 'SSDVGG', 'ssd/ssd300_coco.py', r'^features\.\d+$', 15, 96),
    # HRNetV2-W18: stem 1, layer1 4 blocks, transition1 1, stage2 1 module
    # x (4 blocks + fuse), transition2 1, stage3 4 x 5, transition3 1,
    # stage4 3 x 5 (branches share their block j): 48
    ('mmdet', 'HRNet', 'hrnet/faster-rcnn_hrnetv2p-w18-1x_coco.py',
     r'^layer1\.\d+$|^stage\d+\.\d+\.branches\.0\.\d+$', 48, 64),
    # YOLOv3's MobileNetV2: stem, 1 + 2 + 3 + 4 + 3 + 3 + 1 = 17 inverted
    # residuals, the last 1x1 conv: 19
    ('mmdet', 'MobileNetV2',
     'yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py', r'^layer\d+\.\d+$',
     19, 64),
    ('mmdet', 'HourglassNet',
     'cornernet/cornernet_hourglass104_8xb6-210e-mstest_coco.py',
     r'^hourglass_modules\.\d+\.(?:low2\.)*(?:low1|low3)\.\d+$'
     r'|^hourglass_modules\.\d+\.(?:low2\.){5}\d+$', None, 128),
    ('mmdet', 'Darknet', 'yolo/yolov3_d53_8xb8-ms-608-273e_coco.py',
     r'^conv_res_block\d+\.res\d+$', None, 64),
    # YOLOX-s (blocks 1, 3, 3, 1): stem 1; stage 1: downsampling, CSP
    # split, 1 block, final conv = 4; stages 2 and 3: 1 + 1 + 3 + 1 = 6
    # each; stage 4: downsampling, SPP, split, 1 block, final = 5: 22
    ('mmdet', 'CSPDarknet', 'yolox/yolox_s_8xb8-300e_coco.py',
     r'^stage\d+\.\d+\.blocks\.\d+$', 22, 64),
    ('mmdet', 'CSPNeXt', 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
     r'^stage\d+\.\d+\.blocks\.\d+$', None, 64),
    # Swin-T: patch embedding 1, stages of 2, 2, 6, 2 blocks each closed by
    # a layer (patch merging / output norm): 1 + 3 + 3 + 7 + 3 = 17
    ('mmdet', 'SwinTransformer', 'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
     r'^stages\.\d+\.blocks\.\d+$', 17, 64),
    ('mmdet', 'PyramidVisionTransformer', 'pvt/retinanet_pvt-t_fpn_1x_coco.py',
     r'^layers\.\d+\.1\.\d+$', None, 64),
    # PVTv2-b0 (2 blocks per stage): per stage embedding, 2 blocks, norm: 16
    ('mmdet', 'PyramidVisionTransformerV2',
     'pvt/retinanet_pvtv2-b0_fpn_1x_coco.py', r'^layers\.\d+\.1\.\d+$', 16, 64
     ),
    # EfficientNet-B3: stem + ceil(1.4 x (1, 2, 2, 3, 3, 4, 1)) = 2 + 3 +
    # 3 + 5 + 5 + 6 + 2 = 26 blocks: 27
    ('mmdet', 'EfficientNet',
     'efficientnet/retinanet_effb3_fpn_8xb4-crop896-1x_coco.py',
     r'^layers\.\d+\.\d+$', 27, 64),
    ('mmseg', 'ResNet', 'fcn/fcn_r18b-d8_4xb2-80k_cityscapes-769x769.py',
     r'^layer\d+\.\d+$', 9, 64),
    ('mmseg', 'ResNetV1c',
     'pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
     r'^layer\d+\.\d+$', 9, 64),
    ('mmseg', 'ResNetV1d', dict(type='ResNetV1d',
                                depth=50), r'^layer\d+\.\d+$', 17, 64),
    ('mmseg', 'ResNeXt',
     dict(type='ResNeXt', depth=50, groups=32,
          base_width=4), r'^layer\d+\.\d+$', 17, 64),
    ('mmseg', 'ResNeSt',
     'resnest/resnest_s101-d8_fcn_4xb4-160k_ade20k-512x512.py',
     r'^layer\d+\.\d+$', None, 64),
    ('mmseg', 'HRNet', 'hrnet/fcn_hr18s_4xb4-80k_ade20k-512x512.py',
     r'^layer1\.\d+$|^stage\d+\.\d+\.branches\.0\.\d+$', None, 64),
    ('mmseg', 'FastSCNN',
     'fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py',
     r'^global_feature_extractor\.bottleneck\d\.\d+$', None, 64),
    ('mmseg', 'MobileNetV2',
     'mobilenet_v2/mobilenet-v2-d8_fcn_4xb4-160k_ade20k-512x512.py',
     r'^layer\d+\.\d+$', None, 64),
    ('mmseg', 'UNet', 'unet/unet-s5-d16_fcn_4xb4-160k_cityscapes-512x1024.py',
     r'^encoder\.\d+$|^decoder\.\d+$', 9, 64),
    ('mmseg', 'CGNet', 'cgnet/cgnet_fcn_4xb4-60k_cityscapes-680x680.py',
     r'^level\d\.\d+$', None, 64),
    ('mmseg', 'MobileNetV3',
     'mobilenet_v3/mobilenet-v3-d8-s_lraspp_4xb4-320k_cityscapes-512x1024.py',
     r'^layer\d+$', None, 64),
    # ViT-Ti of Segmenter: tokens and patch embedding, 12 layers, final
    # norm: 14
    ('mmseg', 'VisionTransformer',
     'segmenter/segmenter_vit-t_mask_8xb1-160k_ade20k-512x512.py',
     r'^layers\.\d+$', 14, 64),
    ('mmseg', 'SwinTransformer',
     'swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-'
     '512x512.py', r'^stages\.\d+\.blocks\.\d+$', 17, 64),
    # MiT-B0: per stage patch embedding, 2 blocks, norm: 16
    ('mmseg', 'MixVisionTransformer',
     'segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
     r'^layers\.\d+\.1\.\d+$', 16, 64),
    ('mmseg', 'BiSeNetV1', 'bisenetv1/bisenetv1_r18-d32_4xb4-160k_cityscapes-'
     '1024x1024.py', r'^context_path\.backbone\.layer\d+\.\d+$', None, 64),
    ('mmseg', 'BiSeNetV2', 'bisenetv2/bisenetv2_fcn_4xb4-160k_cityscapes-'
     '1024x1024.py', r'^semantic\.stage[234]\.\d+$', None, 64),
    ('mmseg', 'ICNet', 'icnet/icnet_r18-d8_4xb2-80k_cityscapes-832x832.py',
     r'^backbone\.layer\d+\.\d+$', None, 128),
    ('mmseg', 'ERFNet', 'erfnet/erfnet_fcn_4xb4-160k_cityscapes-512x1024.py',
     r'^(?:encoder|decoder)\.\d+$', None, 64),
    ('mmseg', 'PCPVT', 'twins/twins_pcpvt-s_fpn_fpnhead_8xb4-80k_ade20k-'
     '512x512.py', r'^layers\.\d+\.\d+$', None, 64),
    ('mmseg', 'SVT',
     'twins/twins_svt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512.py',
     r'^layers\.\d+\.\d+$', None, 64),
    ('mmseg', 'STDCNet', 'stdc/stdc1_4xb12-80k_cityscapes-512x1024.py',
     r'^stages\.\d+\.\d+$', None, 64),
    ('mmseg', 'STDCContextPathNet', 'stdc/stdc1_4xb12-80k_cityscapes-'
     '512x1024.py', r'^backbone\.stages\.\d+\.\d+$', None, 64),
    ('mmseg', 'BEiT', 'beit/beit-base_upernet_8xb2-160k_ade20k-640x640.py',
     r'^layers\.\d+$', 13, 640),
    ('mmseg', 'MAE', 'mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py',
     r'^layers\.\d+$', 13, 512),
    ('mmseg', 'PIDNet', 'pidnet/pidnet-s_2xb6-120k_1024x1024-cityscapes.py',
     r'^stem\.[24]\.\d+$|^i_branch_layers\.\d+\.\d+$', None, 64),
    ('mmseg', 'MSCAN', 'segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-'
     '512x512.py', r'^block\d\.\d+$', None, 64),
    # DDRNet-23-slim: stem convs 1, two stages of 2 blocks, stage 3 (2
    # blocks per branch, shared) + exchange 1, stage 4 the same, stage 5
    # (1 block per branch, shared), the SPP: 1 + 2 + 2 + 3 + 3 + 1 + 1 = 13
    ('mmseg', 'DDRNet', 'ddrnet/ddrnet_23-slim_in1k-pre_2xb6-120k_cityscapes-'
     '1024x1024.py', r'^stem\.[24]\.\d+$|^context_branch_layers\.\d+\.\d+$',
     13, 64),
]

#: exported classes that cannot be built here, and why
NOT_BUILT = {
    'mmseg.VPD': 'needs the Stable Diffusion packages of MMSegmentation\'s '
    'requirements/optional.txt (ldm), which do not install on this stack',
    'mmseg.TIMMBackbone': 'needs timm: tests/layers/test_timm_groups.py',
}


def test_every_exported_backbone_has_a_case():
    import mmdet.models.backbones as det
    import mmseg.models.backbones as seg
    exported = {f'mmdet.{c}'
                for c in det.__all__} | {f'mmseg.{c}'
                                         for c in seg.__all__}
    covered = {f'{s}.{c}' for s, c, *_ in CASES} | set(NOT_BUILT)
    assert exported == covered
    assert len(exported) == 20 + 29


def docs_table():
    """``{backbone: (source, layers)}`` of docs/usage.md's table."""
    docs = osp.join(ROOT, 'docs', 'usage.md')
    rows = {}
    for line in open(docs):
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) >= 3 and re.fullmatch(r'`mm\w+\.\w+`( \(\w+\))?',
                                            cells[0]):
            rows[cells[0].split()[0].strip('`')] = (cells[1], cells[2])
    return rows


DOCS = docs_table()


def build_backbone(scope, source):
    if isinstance(source, dict):
        cfg = copy.deepcopy(source)
    else:
        model = Config.fromfile(osp.join(_config_dir(scope), source)).model
        cfg = copy.deepcopy(model.backbone)
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    if cfg.get('norm_cfg', {}).get('type') == 'SyncBN':
        cfg['norm_cfg'] = dict(cfg['norm_cfg'], type='BN')
    registry = __import__(f'{scope}.registry', fromlist=['MODELS'])
    with DefaultScope.overwrite_default_scope(scope):
        return registry.MODELS.build(cfg)


def forward_order(module, size):
    """Module name -> the rank of its first call in a forward pass."""
    order = {}

    def hook(name):

        def record(module, args):
            order.setdefault(name, len(order))

        return record

    handles = [
        m.register_forward_pre_hook(hook(name))
        for name, m in module.named_modules()
    ]
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return order


def check_numbering(backbone, blocks, count=None, size=64, least=2):
    """The checks of the module docstring on one backbone; ``least``: the
    weight layers a main-path block holds at least. Returns the
    numbering."""
    numbered = number_module(backbone)
    layer_of = {n: i for i, names in enumerate(numbered.layers) for n in names}
    assert sorted(layer_of) == sorted(n
                                      for n, _ in backbone.named_parameters())
    order = forward_order(backbone, size)
    modules = dict(backbone.named_modules())
    # the stem: the first module with parameters the forward pass runs
    first = min((r, n) for n, r in order.items()
                if any(True for _ in modules[n].parameters(recurse=False)))[1]
    stem = [
        n for n in layer_of
        if (n.startswith(first + '.') if first else '.' not in n)
    ]
    assert stem and all(layer_of[n] == 0 for n in stem), (first, stem)
    # main-path blocks: each its own layers, in forward order
    main = [
        name for name in modules
        if re.search(blocks, name) and weight_layers(modules[name]) >= least
    ]
    assert len(main) >= 2, main
    spans = {}
    for name in main:
        ids = {i for n, i in layer_of.items() if n.startswith(name + '.')}
        spans[name] = (min(ids), max(ids))
    ran = sorted(main, key=lambda name: order[name])
    for a, b in zip(ran, ran[1:]):
        assert spans[a][1] < spans[b][0], (a, spans[a], b, spans[b])
    if count is not None:
        assert len(numbered.layers) == count, numbered.source
    return numbered


@pytest.mark.parametrize(
    'scope,cls,source,blocks,count,size',
    CASES,
    ids=[f'{s}.{c}' for s, c, *_ in CASES])
def test_blocks_get_layers_of_their_own_in_forward_order(
        scope, cls, source, blocks, count, size):
    if cls == 'STDCNet':  # the backbone of the STDC config's context path
        source = dict(
            Config.fromfile(osp.join(_config_dir(scope),
                                     source)).model.backbone.backbone_cfg)
    backbone = build_backbone(scope, source)
    assert type(backbone).__name__ == cls
    numbered = check_numbering(backbone, blocks, count, size,
                               1 if cls == 'SSDVGG' else 2)
    # the docs' table says what the code does
    assert DOCS[f'{scope}.{cls}'] == (numbered.source,
                                      str(len(numbered.layers)))
