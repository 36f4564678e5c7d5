"""Numbering from the model itself: timm's ``group_matcher`` and
mmpretrain's backbones, with timm's and mmpretrain's real model code.

torchvision does not import here (see tests/torchvision_stand_in.py): a
stand-in of the few names timm and mmpretrain import is put in place for
this module only.
"""
import pytest
import torch.nn as nn
from mmengine.registry import DefaultScope
from test_builtin_schemes import DOCS, check_numbering

import olor_mm  # noqa: F401
from olor_mm import layerwise_rollback_groups
from olor_mm.layers.numbering import number_pretrained, stage_groups


@pytest.fixture(scope='module')
def timm():
    import torchvision_stand_in
    stand_in = not torchvision_stand_in.torchvision_imports()
    if stand_in:
        torchvision_stand_in.install()
    import timm
    yield timm
    if stand_in:
        torchvision_stand_in.uninstall()


def partition(layer_of):
    """``{name: layer}`` as a list of layers (names in order)."""
    layers = {}
    for name, i in layer_of.items():
        layers.setdefault(i, []).append(name)
    return [layers[i] for i in sorted(layers)]


def timm_partition(timm, model, keep):
    """timm's own layer-wise grouping (what its lr decay uses) of the
    names in ``keep``."""
    from timm.models import group_parameters
    grouped = group_parameters(model, model.group_matcher(coarse=False))
    layers = [[n for n in names if n in keep]
              for _, names in sorted(grouped.items())]
    return [layer for layer in layers if layer]


MODELS = {
    # name: layers of the trunk in timm's numbering
    'resnet50': 17,  # stem + 16 bottlenecks
    'vit_small_patch16_224': 13,  # embeddings + 12 blocks (+ final norm)
    'convnext_tiny': 19,  # stem + 18 blocks (downsampling with block 0)
    'swin_tiny_patch4_window7_224': 13,  # embedding + 12 blocks
    'efficientnet_b0': 17,  # stem + 16 blocks
}


@pytest.mark.parametrize('name', list(MODELS))
def test_partition_equals_timms_group_matcher(timm, name):
    model = timm.create_model(name, pretrained=False)
    head = {id(p) for p in model.get_classifier().parameters()}
    trunk = [n for n, p in model.named_parameters() if id(p) not in head]
    numbering = number_pretrained(
        model, ('', ), exclude=model.get_classifier())
    assert sorted(numbering.layer_of) == sorted(trunk)
    ours = partition(numbering.layer_of)
    assert ours == timm_partition(timm, model, set(trunk))
    assert len(ours) == MODELS[name] + (name == 'convnext_tiny')  # +norm
    assert numbering.notes[0].endswith('numbered by timm group_matcher')
    # the plain API gives the same groups, the classifier not rolled back
    groups = layerwise_rollback_groups(
        model, ('', ), rollback_max=0.1, exclude=model.get_classifier())
    names = {id(p): n for n, p in model.named_parameters()}
    assert [[names[id(p)] for p in g['params']] for g in groups
            if g['layer_id'] is not None] == ours
    assert groups[-1]['layer_id'] is None
    assert {id(p) for p in groups[-1]['params']} == head
    assert groups[0]['rollback'] == 0.1


def test_trunk_prefixes_number_one_stem(timm):
    model = timm.create_model('resnet50', pretrained=False)
    prefixes = ('conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4')
    numbering = number_pretrained(model, prefixes)
    assert numbering.count == 17
    assert numbering.layer_of['conv1.weight'] == 0
    assert numbering.layer_of['bn1.bias'] == 0
    assert numbering.layer_of['layer1.0.conv1.weight'] == 1
    assert 'fc.weight' not in numbering.layer_of


def test_top_level_parameters_can_be_named(timm):
    model = timm.create_model('vit_small_patch16_224', pretrained=False)
    numbering = number_pretrained(
        model, ('cls_token', 'pos_embed', 'patch_embed', 'blocks', 'norm'))
    # timm's matcher: tokens + embedding, the blocks, the norm joins the
    # last block (MATCH_PREV_GROUP)
    assert numbering.layer_of['cls_token'] == 0
    assert numbering.layer_of['pos_embed'] == 0
    assert numbering.layer_of['patch_embed.proj.weight'] == 0
    assert numbering.layer_of['blocks.11.mlp.fc2.bias'] == 12
    assert numbering.layer_of['norm.weight'] == 12
    assert numbering.count == 13


def test_stage_view_is_timms_coarse_grouping(timm):
    model = timm.create_model('resnet50', pretrained=False)
    names = [n for n, _ in model.named_parameters()]
    wrapper = nn.Module()
    wrapper.backbone = model
    groups = stage_groups(wrapper, [f'backbone.{n}' for n in names])
    assert list(groups) == [
        'backbone.stem', 'backbone.stage1', 'backbone.stage2',
        'backbone.stage3', 'backbone.stage4', 'backbone.top'
    ]
    assert groups['backbone.top'] == ['backbone.fc.weight', 'backbone.fc.bias']
    assert len(groups['backbone.stage3']) == 6 * 9 + 3  # 6 blocks + shortcut


def test_mmseg_timm_backbone_features_only_is_discovered(timm):
    import mmseg.models.backbones.timm_backbone as wrapper
    from mmseg.registry import MODELS as SEG
    wrapper.timm = timm  # mmseg imported before timm could import
    with DefaultScope.overwrite_default_scope('mmseg'):
        backbone = SEG.build(
            dict(type='TIMMBackbone', model_name='resnet50', pretrained=False))
    numbered = check_numbering(
        backbone, r'^timm_model\.layer\d+\.\d+$', count=17, size=64)
    assert numbered.source.startswith('block discovery')


@pytest.fixture(scope='module')
def mmpretrain(timm):
    import mmpretrain.models  # noqa: F401
    from mmpretrain.registry import MODELS

    def build(**cfg):
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            return MODELS.build(cfg)

    return build


@pytest.mark.parametrize(
    'cfg,blocks,count',
    [
        # stem, then per stage: downsampling, blocks (3, 3, 9, 3); the
        # output norm of the last stage: 4 + 18 + 1 = 23
        (dict(type='ConvNeXt', arch='tiny'), r'^stages\.\d+\.\d+$', 23),
        # stem, 1 + 2 + 2 + 3 + 3 + 4 + 1 = 16 blocks, the last conv: 18
        (dict(type='EfficientNet', arch='b0'), r'^layers\.\d+\.\d+$', 18),
        (dict(type='EfficientNetV2', arch='s'), r'^layers\.\d+\.\d+$', None),
        # mmpretrain's ViT-S has 8 layers: embeddings + 8 + final norm
        (dict(type='VisionTransformer', arch='s', img_size=64,
              patch_size=16), r'^layers\.\d+$', 10),
        (dict(type='SwinTransformer', arch='t',
              img_size=224), r'^stages\.\d+\.blocks\.\d+$', 17),
        (dict(type='ResNet', depth=50), r'^layer\d+\.\d+$', 17),
        # RegNetX-400MF: depths 1, 2, 7, 12 + stem = 23
        (dict(type='RegNet', arch='regnetx_400mf'), r'^layer\d+\.\d+$', 23),
        (dict(type='MobileNetV2'), r'^layer\d+\.\d+$', 19),
        # stem, 11 inverted residuals, the last conv: 13
        (dict(type='MobileNetV3', arch='small'), r'^layer\d+$', 13),
    ],
    ids=lambda v: v['type'] if isinstance(v, dict) else None)
def test_mmpretrain_backbones(mmpretrain, cfg, blocks, count):
    backbone = mmpretrain(**cfg)
    numbered = check_numbering(
        backbone, blocks, count, size=cfg.get('img_size', 64))
    assert DOCS[f'mmpretrain.{cfg["type"]}'] == (numbered.source,
                                                 str(len(numbered.layers)))
