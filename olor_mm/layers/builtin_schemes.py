"""The built-in layer schemes of MMDetection's, MMSegmentation's and
mmpretrain's backbones.

Every backbone class ``mmdet.models.backbones`` and
``mmseg.models.backbones`` export is numbered block by block: the stem
first, then each residual / inverted-residual / CSP / transformer block,
with stage transitions and norms where they sit in the forward order. The
classes below declare rules (see :mod:`olor_mm.layers.layer_schemes` for their
format); the others are numbered by block discovery
(:mod:`olor_mm.layers.block_discovery`), which finds their blocks as they are
registered (``docs/usage.md`` has the table of every class, its source and
its number of layers). Schemes are keyed by ``'package.ClassName'``, so this
module imports none of those packages, and subclasses inherit them
(``mmdet.ResNet`` serves ResNeXt, Res2Net, ResNeSt, RegNet, ...).

**Multi-branch networks** (HRNet, BiSeNet, ICNet, PIDNet, DDRNet,
Hourglass) follow one rule: branches run side by side, so *blocks at the
same depth across branches share a layer* (block ``j`` of every branch of
an HRNet module is one layer); what fuses the branches comes after the
blocks it fuses. A shallow side branch (BiSeNetV1's spatial path, ICNet's
full-resolution convs) shares the layers of the main path at its depth
(its ``k``-th conv with the main path's ``k``-th layer).

This module imports nothing of MMEngine.
"""
from typing import List, Sequence

import torch.nn as nn

from .layer_schemes import END, START, Rule, register_layer_scheme

# ------------------------------------------------------------------ ResNets
#: stem (deep stem of V1c / V1d, Res2Net, ResNeSt), then block j of stage s
RESNET: List[Rule] = [
    (r'^(?:stem|conv1|bn1|norm1)\.', (0, )),
    r'^layer(\d+)\.(\d+)\.',
]
register_layer_scheme(
    ('mmdet.ResNet', 'mmseg.ResNet', 'mmpretrain.ResNet',
     'mmpretrain.ResNetV1c', 'mmpretrain.ResNetV1d'),
    RESNET,
    first_stage=1,
    note='stem, then every residual block (ResNeXt, Res2Net, ResNeSt, '
    'RegNet, DetectoRS and TridentNet inherit it)')

# -------------------------------------------------------------- transformers
#: patch embedding, every block, each stage's patch merging and output norm
#: at the end of that stage
SWIN: List[Rule] = [
    (r'^(?:patch_embed\.|absolute_pos_embed$)', (START, )),
    r'^stages\.(\d+)\.blocks\.(\d+)\.',
    (r'^stages\.(\d+)\.downsample\.', (END, )),
    (r'^norm(\d+)\.', (END, )),
]
register_layer_scheme(
    ('mmdet.SwinTransformer', 'mmseg.SwinTransformer',
     'mmpretrain.SwinTransformer'),
    SWIN,
    note='patch embedding, every block; patch merging and output norm '
    'close their stage')

#: tokens and patch embedding, every encoder layer, the final norm
VIT: List[Rule] = [
    (r'^(?:cls_token$|dist_token$|pos_embed$|patch_embed\.|ln0\.|pre_ln\.'
     r'|pre_norm\.)', (START, )),
    r'^layers\.(\d+)\.',
    (r'^(?:ln1|ln2|norm1|final_norm)\.', (END, )),
]
register_layer_scheme(
    ('mmseg.VisionTransformer', 'mmseg.BEiT', 'mmpretrain.VisionTransformer'),
    VIT,
    note='class token, position and patch embedding, every encoder '
    'layer, the final norm (MAE inherits it)')

#: per stage: overlapping patch embedding, blocks, norm (PVT v1's position
#: embedding, the first element of its block list, joins the embedding)
PYRAMID: List[Rule] = [
    (r'^layers\.(\d+)\.1\.0\.pos_embed$', (START, )),
    (r'^layers\.(\d+)\.0\.', (START, )),
    r'^layers\.(\d+)\.1\.(\d+)\.',
    (r'^layers\.(\d+)\.2\.', (END, )),
]
register_layer_scheme(
    ('mmseg.MixVisionTransformer', 'mmdet.PyramidVisionTransformer'),
    PYRAMID,
    note='per stage: patch embedding, blocks, norm (PVTv2 inherits it)')

#: Twins: per stage the patch embedding, the blocks with the position
#: encoding (PEG) after the first block, the stage's norm
TWINS: List[Rule] = [
    (r'^patch_embeds\.(\d+)\.', (START, )),
    r'^layers\.(\d+)\.(\d+)\.',
    (r'^position_encodings\.(\d+)\.', (0, 1)),
    (r'^norm_list\.(\d+)\.', (END, )),
]
register_layer_scheme(
    ('mmseg.PCPVT', 'mmpretrain.PCPVT'),
    TWINS,
    note='per stage: patch embedding, blocks (the position encoding '
    'after the first), norm (SVT inherits it)')

register_layer_scheme(
    'mmseg.MSCAN', [
        (r'^patch_embed(\d+)\.', (START, )),
        r'^block(\d+)\.(\d+)\.',
        (r'^norm(\d+)\.', (END, )),
    ],
    first_stage=1,
    note='per stage: patch embedding, blocks, norm')

#: mmpretrain's ConvNeXt: the stem and each downsampling before their
#: stage's blocks, the output norm after them
register_layer_scheme(
    'mmpretrain.ConvNeXt', [
        (r'^downsample_layers\.(\d+)\.', (START, )),
        r'^stages\.(\d+)\.(\d+)\.',
        (r'^norm(\d+)\.', (END, )),
    ],
    note='stem, then per stage: downsampling, blocks, output norm')

# -------------------------------------------------- CSP and mobile networks
#: CSPDarknet (YOLOX) / CSPNeXt (RTMDet): per stage the downsampling conv,
#: the SPP block (last stage), the CSP layer's two 1x1 convs, its blocks,
#: its channel attention and final conv, in forward order (the final conv
#: is registered before the blocks)
CSP: List[Rule] = [
    (r'^stem\.', (0, )),
    (r'^stage(\d+)\.0\.', (-3, )),
    (r'^stage(\d+)\.\d+\.(?:conv1|conv2|poolings)\.', (-2, )),
    (r'^stage(\d+)\.\d+\.(?:main_conv|short_conv)\.', (-1, )),
    r'^stage(\d+)\.\d+\.blocks\.(\d+)\.',
    (r'^stage(\d+)\.\d+\.attention\.', (END, 0)),
    (r'^stage(\d+)\.\d+\.final_conv\.', (END, 1)),
]
register_layer_scheme(
    ('mmdet.CSPDarknet', 'mmdet.CSPNeXt'),
    CSP,
    first_stage=1,
    note='stem, then per stage: downsampling, SPP, CSP split, blocks, '
    'attention, final conv (forward order)')

#: MobileNetV3 (mmseg, mmpretrain): its blocks are attributes layer0 ...
MOBILENET_V3: List[Rule] = [r'^layer(\d+)\.']
register_layer_scheme(
    ('mmseg.MobileNetV3', 'mmpretrain.MobileNetV3'),
    MOBILENET_V3,
    note='the stem conv, every inverted residual, the last conv')


def _vgg(module) -> List[Rule]:
    """Every conv of ``features`` a layer; its stage counts the poolings."""
    rules, stage = [], 0
    for i, layer in enumerate(module.features):
        if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            stage += 1
        elif next(layer.parameters(), None) is not None:
            rules.append((rf'^features\.{i}\.', (stage, i), ()))
    return rules


register_layer_scheme(
    'mmdet.SSDVGG',
    _vgg,
    note='every conv (VGG has no blocks); stages between the poolings')

# ------------------------------------------------------ multi-branch nets
#: HRNet: stem, layer1's blocks, then per stage and module: block j of
#: every branch (one layer), the fuse layers; each transition at the end
#: of the stage before the one it feeds
HRNET: List[Rule] = [
    (r'^(?:conv1|bn1|conv2|bn2|norm1|norm2)\.', (0, )),
    r'^layer(1)\.(\d+)\.',
    (r'^transition(\d+)\.', (END, )),
    r'^stage(\d+)\.(\d+)\.branches\.\d+\.(\d+)\.',
    (r'^stage(\d+)\.(\d+)\.fuse_layers\.', (END, )),
]
register_layer_scheme(
    ('mmdet.HRNet', 'mmseg.HRNet', 'mmpretrain.HRNet'),
    HRNET,
    first_stage=1,
    multi_branch=True,
    note='stem, layer1, then per module block j of every branch '
    '(shared), fuse layers; transitions close their stage')


def _hourglass(module) -> List[Rule]:
    """Stacked hourglasses: per stack, level d's skip (``up1``) and down
    path (``low1``) share layers, the bottom, then the up paths
    (``low3``) back to level 0, then the stack's output and joins."""
    depth, hourglass = 0, module.hourglass_modules[0]
    while hasattr(hourglass, 'low2') and hasattr(hourglass.low2, 'low2'):
        depth, hourglass = depth + 1, hourglass.low2
    depth += 1  # the levels; the bottom ResLayer is low2 of the last one
    rules: List[Rule] = [(r'^stem\.', (0, ))]
    for k in range(len(module.hourglass_modules)):
        for d in range(depth):
            at = rf'^hourglass_modules\.{k}\.' + r'low2\.' * d
            rules.append((at + r'(?:up1|low1)\.(\d+)\.', (1 + k, d), ()))
            rules.append((at + r'low3\.(\d+)\.', (1 + k, 2 * depth - d), ()))
        rules.append(
            (rf'^hourglass_modules\.{k}\.' + r'low2\.' * depth + r'(\d+)\.',
             (1 + k, depth), ()))
        rules.append((rf'^out_convs\.{k}\.', (1 + k, 2 * depth + 1), ()))
        rules.append(
            (rf'^(?:conv1x1s|remap_convs)\.{k}\.', (1 + k, 2 * depth + 2), ()))
        rules.append((rf'^inters\.{k}\.', (1 + k, 2 * depth + 3), ()))
    return rules


register_layer_scheme(
    'mmdet.HourglassNet',
    _hourglass,
    first_stage=1,
    multi_branch=True,
    note='stem, then per stack: each level\'s skip and down path (shared), '
    'the bottom, the up path, the joins')


def _resnet_beside(resnet: str, side: Sequence[str],
                   after: List[Rule]) -> List[Rule]:
    """A ResNet (parameters under ``resnet``) numbered as usual, a
    full-resolution branch beside its first layers (``side[0]`` shares the
    stem's layer, ``side[k]`` the layer of block k - 1 of stage 1), then
    the rules ``after``."""
    rules: List[Rule] = [
        (rf'^{resnet}\.(?:stem|conv1|bn1|norm1)\.', (0, )),
        rf'^{resnet}\.layer(\d+)\.(\d+)\.',
        (rf'^{side[0]}\.', (0, )),
    ]
    rules += [(rf'^{s}\.', (1, k), ()) for k, s in enumerate(side[1:])]
    return rules + after


#: BiSeNetV1: the context path's ResNet, its spatial path alongside the
#: ResNet's first layers, then the attention refinement heads, the fusion
register_layer_scheme(
    'mmseg.BiSeNetV1',
    _resnet_beside(r'context_path\.backbone',
                   [rf'spatial_path\.layer{i}' for i in range(1, 5)], [
                       (r'^context_path\.(?:gap_conv|arm32|conv_head32)\.',
                        (END, 0)),
                       (r'^context_path\.(?:arm16|conv_head16)\.', (END, 1)),
                       (r'^ffm\.', (END, 2)),
                   ]),
    first_stage=1,
    multi_branch=True,
    note='context ResNet with the spatial path alongside its first layers '
    '(shared), refinement heads, fusion')

#: BiSeNetV2: detail stage s beside semantic stage s + 1, block j of
#: both one layer; the context embedding, then the aggregation
register_layer_scheme(
    'mmseg.BiSeNetV2', [
        r'^detail\.detail_branch\.(\d+)\.(\d+)\.',
        (r'^semantic\.stage1\.', (0, 0), ()),
        (r'^semantic\.stage2\.(\d+)\.', (1, ), ()),
        (r'^semantic\.stage3\.(\d+)\.', (2, ), ()),
        (r'^semantic\.stage4\.(\d+)\.', (3, ), ()),
        (r'^semantic\.stage4_CEBlock\.', (3, END), ()),
        (r'^bga\.', (END, )),
    ],
    multi_branch=True,
    note='detail and semantic branches side by side (block j of stage s '
    'shared), context embedding, aggregation')

#: ICNet: the ResNet; the full-resolution convs alongside its first
#: layers; each cascade output after the stage it reads
register_layer_scheme(
    'mmseg.ICNet',
    _resnet_beside(r'backbone', [rf'conv_sub1\.{i}' for i in range(3)], [
        (r'^conv_sub2\.', (2, END), ()),
        (r'^psp_modules\.', (4, END, 0), ()),
        (r'^psp_bottleneck\.', (4, END, 1), ()),
        (r'^conv_sub4\.', (4, END, 2), ()),
    ]),
    first_stage=1,
    multi_branch=True,
    note='ResNet with the full-resolution branch alongside its first '
    'layers (shared), cascade outputs after their stage')


def _three_branches(names: str, fuse: List[Rule]) -> List[Rule]:
    """PIDNet / DDRNet: a stem of two convs and two stages of blocks
    (``stem.2``, ``stem.4``), then three stages where block j of every
    branch is one layer."""
    rules: List[Rule] = [
        (r'^stem\.[01]\.', (0, )),
        (r'^stem\.2\.(\d+)\.', (1, ), ()),
        (r'^stem\.4\.(\d+)\.', (2, ), ()),
    ]
    for b in range(3):
        rules.append((rf'^{names}\.{b}\.(\d+)\.', (3 + b, ), ()))
        rules.append((rf'^{names}\.{b}\.', (3 + b, 0), ()))  # a lone block
    return rules + fuse


register_layer_scheme(
    'mmseg.PIDNet',
    _three_branches(r'[ipd]_branch_layers', [
        (r'^(?:compression|pag|diff)_1\.', (3, END), ()),
        (r'^(?:compression|pag|diff)_2\.', (4, END), ()),
        (r'^spp\.', (5, END, 0), ()),
        (r'^dfm\.', (5, END, 1), ()),
    ]),
    multi_branch=True,
    note='conv stem, two stages, then P, I and D branches side by side '
    '(block j shared), each fusion after its stage')
register_layer_scheme(
    'mmseg.DDRNet',
    _three_branches(r'(?:context|spatial)_branch_layers', [
        (r'^(?:compression|down)_1\.', (3, END), ()),
        (r'^(?:compression|down)_2\.', (4, END), ()),
        (r'^spp\.', (5, END), ()),
    ]),
    multi_branch=True,
    note='conv stem, two stages, then the context and spatial branches '
    'side by side (block j shared), each exchange after its stage')

#: STDC: two conv stages (the stem), then stage s's STDC modules
STDC: List[Rule] = [
    (r'^stages\.[01]\.', (0, )),
    r'^stages\.(\d+)\.(\d+)\.',
    (r'^final_conv\.', (END, )),
]
register_layer_scheme(
    'mmseg.STDCNet',
    STDC,
    first_stage=2,
    note='two conv stages as the stem, then every STDC module')
register_layer_scheme(
    'mmseg.STDCContextPathNet',
    [(r'^backbone\.' + rule[0][1:],
      *rule[1:]) if isinstance(rule, tuple) else r'^backbone\.' + rule[1:]
     for rule in STDC] + [
         (r'^conv_avg\.', (END, -1), ()),
         (r'^arms\.(\d+)\.', (END, ), (0, )),
         (r'^convs\.(\d+)\.', (END, ), (1, )),
         (r'^ffm\.', (END, END), ()),
     ],
    first_stage=2,
    note='the STDC backbone, then the context path from the deepest '
    'feature up, the fusion')


def _unet(module) -> List[Rule]:
    """UNet: the encoder's stages, then the decoder's from the deepest
    (it runs ``decoder[n-1]`` first)."""
    n = len(module.decoder)
    return [(r'^encoder\.(\d+)\.', (0, ), ())] + [(rf'^decoder\.{i}\.',
                                                   (1, n - 1 - i), ())
                                                  for i in range(n)]


register_layer_scheme(
    'mmseg.UNet',
    _unet,
    note='every encoder stage, then the decoder stages in the order they '
    'run (deepest first)')


# ------------------------------------------- necks and heads (load_from)
def _fpn(module) -> List[Rule]:
    """FPN: the lateral convs of every level are one layer (the levels run
    side by side), their output convs the next; extra levels (RetinaNet's
    P6, P7) follow one after another."""
    levels = len(module.lateral_convs)
    return [(r'^lateral_convs\.', (0, ),
             ())] + [(rf'^fpn_convs\.{i}\.', (1 + max(0, i - levels + 1), ),
                      ()) for i in range(len(module.fpn_convs))]


register_layer_scheme(
    ('mmdet.FPN', 'mmseg.FPN'),
    _fpn,
    multi_branch=True,
    note='lateral convs (all levels), output convs, extra levels')
register_layer_scheme(
    'mmdet.RPNHead', [(r'^rpn_conv\.', (0, )),
                      (r'^(?:rpn_cls|rpn_reg)\.', (1, ))],
    multi_branch=True,
    note='the shared conv, then the objectness and box branches')
