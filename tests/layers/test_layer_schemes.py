"""Layer numbering of real mmdet / mmseg backbones, and the constructor;
a scheme registered under the full dotted path (misuse probe E1)."""
import types

import pytest
import torch.nn as nn
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as MMSEG_MODELS
from toy import TOY_LAYERS, ToyClassifier, olor_wrapper_cfg

import olor_mm  # noqa: F401
from olor_mm import layerwise_rollback_groups, register_layer_scheme


def _det(cfg):
    """Build an mmdet module whatever default scope earlier tests left."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg)


def _seg(cfg):
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MMSEG_MODELS.build(cfg)


class Detector(nn.Module):
    """A pretrained ``backbone`` and a new ``neck``."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.neck = nn.Linear(2, 2)


def _groups(model, **paramwise):
    ow = build_optim_wrapper(
        model, olor_wrapper_cfg(dict(type='SGD', lr=0.1), **paramwise))
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(p)]: g
        for g in ow.optimizer.param_groups for p in g['params']
    }


def _layer_ids(model, **paramwise):
    return {n: g['layer_id'] for n, g in _groups(model, **paramwise).items()}


def _block_of(name, stage_re):
    """(stage, block) parsed from a name, for building expectations."""
    import re
    m = re.search(stage_re, name)
    return tuple(int(g) for g in m.groups()) if m else None


def _resnet_expected(name, depths):
    """Stem 0, then block j of stage s at 1 + sum(depths[:s-1]) + j."""
    sb = _block_of(name, r'layer(\d+)\.(\d+)\.')
    if sb is None:
        return 0
    s, j = sb
    return 1 + sum(depths[:s - 1]) + j


@pytest.mark.parametrize(
    'build,cfg', [
        (_det, dict(type='ResNet', depth=50)),
        (_det, dict(type='ResNetV1d', depth=50)),
        (_det, dict(type='ResNeXt', depth=50, groups=32, base_width=4)),
        (_seg, dict(type='ResNetV1c', depth=50)),
    ],
    ids=[
        'mmdet-ResNet50', 'mmdet-ResNetV1d50', 'mmdet-ResNeXt50',
        'mmseg-ResNetV1c50'
    ])
def test_resnet50_stem_then_blocks(build, cfg):
    model = Detector(build(cfg))
    ids = _layer_ids(model)
    depths = (3, 4, 6, 3)
    for name, i in ids.items():
        if name.startswith('backbone.'):
            assert i == _resnet_expected(name, depths), name
        else:
            assert i is None, name
    assert ids['backbone.layer1.0.conv1.weight'] == 1
    assert ids['backbone.layer3.0.conv1.weight'] == 8
    assert max(i for i in ids.values() if i is not None) == 16  # n
    groups = _groups(model)
    lams = {g['layer_id']: g['rollback'] for g in groups.values()}
    # default iota1 = 0.2 in these tests, iota2 = 0, gamma = 1, n = 16
    assert lams == pytest.approx({
        **{i: 0.2 * (1 - i / 16)
           for i in range(17)}, None: 0.0
    })


def test_frozen_stages_take_no_depth():
    """frozen_stages=1 freezes the stem and stage 1: they take no depth,
    so the first trainable block is layer 0 with rollback_max and the
    deepest keeps rollback_min (n = 16 - 4 = 12)."""
    frozen = _groups(
        Detector(_det(dict(type='ResNet', depth=50, frozen_stages=1))))
    for name in ('backbone.conv1.weight', 'backbone.layer1.0.conv1.weight'):
        assert name not in frozen or frozen[name]['rollback'] == 0.0, name
    assert frozen['backbone.layer2.0.conv1.weight']['layer_id'] == 0
    assert frozen['backbone.layer4.2.conv1.weight']['layer_id'] == 12
    for name, g in frozen.items():
        if name.startswith('backbone.') and g['layer_id'] is not None:
            assert g['rollback'] == pytest.approx(
                0.2 * (1 - g['layer_id'] / 12)), name


def _swin_expected(name, depths):
    """patch_embed 0; blocks; each stage's downsample + out norm after it."""
    offsets, k = [], 1
    for d in depths:
        offsets.append(k)
        k += d + 1  # blocks, then the transition layer
    sb = _block_of(name, r'stages\.(\d+)\.blocks\.(\d+)\.')
    if sb:
        return offsets[sb[0]] + sb[1]
    s = _block_of(name, r'stages\.(\d+)\.downsample\.') or _block_of(
        name, r'^norm(\d+)\.')  # patch merging / out norm of stage s
    if s:
        return offsets[s[0]] + depths[s[0]]
    return 0


@pytest.mark.parametrize('build', [_det, _seg], ids=['mmdet', 'mmseg'])
def test_swin_t(build):
    model = Detector(
        build(
            dict(
                type='SwinTransformer',
                embed_dims=96,
                depths=(2, 2, 6, 2),
                num_heads=(3, 6, 12, 24))))
    ids = _layer_ids(model)
    for name, i in ids.items():
        if name.startswith('backbone.'):
            assert i == _swin_expected(name[len('backbone.'):],
                                       (2, 2, 6, 2)), name
    assert ids['backbone.patch_embed.projection.weight'] == 0
    assert ids['backbone.stages.0.blocks.0.norm1.weight'] == 1
    assert ids['backbone.stages.0.downsample.reduction.weight'] == 3
    assert ids['backbone.norm0.weight'] == 3
    assert ids['backbone.stages.3.blocks.1.norm1.weight'] == 15
    assert ids['backbone.norm3.weight'] == 16  # the final norm is deepest


def test_swin_absolute_pos_embed_is_in_the_stem():
    model = Detector(
        _det(
            dict(
                type='SwinTransformer',
                use_abs_pos_embed=True,
                pretrain_img_size=32,
                depths=(2, 2, 2, 2))))
    assert _layer_ids(model)['backbone.absolute_pos_embed'] == 0


def test_mmseg_vit():
    model = Detector(
        _seg(
            dict(
                type='VisionTransformer',
                img_size=(32, 32),
                patch_size=16,
                embed_dims=32,
                num_layers=3,
                num_heads=2,
                final_norm=True)))
    ids = _layer_ids(model)
    assert ids['backbone.cls_token'] == ids['backbone.pos_embed'] == 0
    assert ids['backbone.patch_embed.projection.weight'] == 0
    assert ids['backbone.layers.0.ln1.weight'] == 1
    assert ids['backbone.layers.2.ffn.layers.1.weight'] == 3
    assert ids['backbone.ln1.weight'] == 4


def _mit(depth, heads=(1, 2, 4, 8)):
    """A small mmseg MiT of ``depth`` blocks per stage, as a Detector."""
    return Detector(
        _seg(
            dict(
                type='MixVisionTransformer',
                in_channels=3,
                embed_dims=16,
                num_layers=[depth] * 4,
                num_heads=list(heads))))


def test_mmseg_mit():
    model = _mit(2)
    ids = _layer_ids(model)
    # per stage: patch embed, 2 blocks, norm -> 4 layers per stage
    for s in range(4):
        assert ids[f'backbone.layers.{s}.0.projection.weight'] == 4 * s
        assert ids[f'backbone.layers.{s}.1.0.norm1.weight'] == 4 * s + 1
        assert ids[f'backbone.layers.{s}.1.1.norm1.weight'] == 4 * s + 2
        assert ids[f'backbone.layers.{s}.2.weight'] == 4 * s + 3
    assert max(v for v in ids.values() if v is not None) == 15


class ConvNeXtLike(nn.Module):
    """mmpretrain's ConvNeXt names (its blocks are single convs here), a
    class no built-in scheme knows: numbered by the scheme registered for
    it."""

    def __init__(self, depths=(1, 1, 2, 1)):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            nn.Conv2d(2, 2, 1) for _ in depths)
        self.stages = nn.ModuleList(
            nn.Sequential(*[nn.Conv2d(2, 2, 1) for _ in range(d)])
            for d in depths)
        self.norm3 = nn.LayerNorm(2)


CONVNEXT_RULES = [
    (r'^downsample_layers\.(\d+)\.', (-1, )),
    r'^stages\.(\d+)\.(\d+)\.',
    (r'^norm(\d+)\.', (float('inf'), )),
]


@pytest.fixture
def convnext_scheme():
    from olor_mm.layers.layer_schemes import _SCHEMES, register_layer_scheme
    register_layer_scheme(ConvNeXtLike, CONVNEXT_RULES)
    yield
    del _SCHEMES[ConvNeXtLike]


def test_a_tuple_of_targets_registers_the_scheme_for_each():
    """As the built-in schemes of several packages are registered: each
    target, a class or a 'package.Class' name, finds the same rules."""
    from olor_mm.layers.layer_schemes import (_SCHEMES, find_scheme,
                                              register_layer_scheme)

    class OtherNet(nn.Module):
        pass

    by_name = f'{OtherNet.__module__.split(".")[0]}.OtherNet'
    schemes = register_layer_scheme((ConvNeXtLike, by_name),
                                    CONVNEXT_RULES,
                                    note='one scheme, two targets')
    try:
        assert len(schemes) == 2
        for cls in (ConvNeXtLike, OtherNet):
            assert find_scheme(cls).rules is CONVNEXT_RULES
            assert find_scheme(cls).note == 'one scheme, two targets'
    finally:
        del _SCHEMES[ConvNeXtLike], _SCHEMES[by_name]


def test_registered_scheme_numbers_its_class(convnext_scheme, mm_log):
    ids = _layer_ids(Detector(ConvNeXtLike()))
    expected = {
        'downsample_layers.0.weight': 0,
        'stages.0.0.weight': 1,
        'downsample_layers.1.weight': 2,
        'stages.1.0.weight': 3,
        'downsample_layers.2.weight': 4,
        'stages.2.0.weight': 5,
        'stages.2.1.weight': 6,
        'downsample_layers.3.weight': 7,
        'stages.3.0.weight': 8,
        'norm3.weight': 9
    }
    for name, i in expected.items():
        assert ids['backbone.' + name] == i, name
    assert any('scheme test_layer_schemes.ConvNeXtLike' in r.getMessage()
               for r in mm_log)


def test_param_unit_matches_reference_numbering():
    model = Detector(_det(dict(type='ResNet', depth=50, frozen_stages=1)))
    groups = _groups(model, layer_unit='param', rollback_max=0.01)
    # every trainable tensor a layer, in order; the frozen stem and stage
    # 1 (frozen_stages=1) take no depth
    names = [
        n for n, p in model.named_parameters()
        if n.startswith('backbone.') and p.requires_grad
    ]
    n = len(names) - 1
    for k, name in enumerate(names):
        assert groups[name]['layer_id'] == k
        assert groups[name]['rollback'] == pytest.approx(
            0.01 * (1 - k / n), abs=1e-15)


def test_unknown_backbone_is_numbered_by_its_blocks(mm_log):
    # no scheme, no group_matcher: the repeated operations are the layers
    model = Detector(
        nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)))
    ids = _layer_ids(model, rollback_max=0.1)
    assert ids['backbone.0.weight'] == 0 and ids['backbone.2.bias'] == 1
    assert any('block discovery' in r.getMessage() for r in mm_log)


def test_whole_model_expands_known_backbones():
    model = Detector(_det(dict(type='ResNet', depth=18)))
    ids = _layer_ids(model, pretrained_prefixes=('', ))
    # ResNet-18: stem + 8 blocks = 9 layers (0..8), then the neck is 9
    assert ids['backbone.layer4.1.conv1.weight'] == 8
    assert ids['neck.weight'] == 9


def test_custom_layer_patterns():
    ids = _layer_ids(ToyClassifier(blocks=(1, 2)), layer_patterns=TOY_LAYERS)
    assert ids['backbone.conv1.weight'] == 0
    assert ids['backbone.layer2.1.0.weight'] == 3
    assert ids['head.weight'] is None


def test_default_constructor_keys_keep_working():
    model = Detector(_det(dict(type='ResNet', depth=18)))
    ow = build_optim_wrapper(
        model,
        dict(
            type='OLOROptimWrapper',
            optimizer=dict(type='SGD', lr=0.1, weight_decay=1e-4),
            constructor='LayerwiseRollbackConstructor',
            paramwise_cfg=dict(
                custom_keys={'backbone': dict(decay_mult=0.)},
                norm_decay_mult=0.,
                bias_decay_mult=0.5)))
    names = {id(p): n for n, p in model.named_parameters()}
    by_name = {names[id(g['params'][0])]: g for g in ow.optimizer.param_groups}
    assert by_name['backbone.conv1.weight']['weight_decay'] == 0.0
    assert by_name['neck.bias']['weight_decay'] == pytest.approx(0.5e-4)
    assert by_name['neck.weight']['weight_decay'] == pytest.approx(1e-4)
    assert by_name['backbone.conv1.weight']['rollback'] == 0.01  # default


@pytest.mark.parametrize('paramwise,match', [
    (dict(rollback_max=1.2), 'rollback_max'),
    (dict(rollback_min=-0.1), 'rollback_min'),
    (dict(rollback_max=0.01, rollback_min=0.1), 'rollback_min'),
    (dict(rollback_power=-1), 'rollback_power'),
    (dict(layer_unit='stage'), 'layer_unit'),
    (dict(pretrained_prefixes=('encoder', )), 'pretrained_prefixes'),
    (dict(pretrained_prefixes=()), 'pretrained_prefixes'),
    (dict(pretrained_prefixes=('', 'backbone')), 'pretrained_prefixes'),
    (dict(layer_patterns=[r'^conv1\.']), 'layer_patterns'),
    (dict(layer_patterns=[r'^(conv']), 'layer_patterns'),
])
def test_bad_config_fails_at_build_naming_the_key(paramwise, match):
    with pytest.raises(ValueError, match=match):
        _groups(ToyClassifier(), **paramwise)


def test_layer_table_is_logged(mm_log):
    _groups(Detector(_det(dict(type='ResNet', depth=18))))
    table = next(r.getMessage() for r in mm_log
                 if 'OLOR layer-wise rollback' in r.getMessage())
    lines = table.splitlines()
    assert lines[1].split() == [
        'layer', 'lam_i', 'tensors', 'params', 'first', 'parameter', 'last',
        'parameter', 'source'
    ]
    # the stem: conv1 (64 x 3 x 7 x 7) + bn1 (2 x 64)
    assert lines[2].split() == [
        '0', '0.200000', '3', '9,536', 'backbone.conv1.weight',
        'backbone.bn1.bias', 'scheme', 'mmdet.ResNet'
    ]
    # the last of ResNet-18's 9 layers: its last basic block (lam 0)
    assert lines[-2].split()[:3] == ['8', '0.000000', '6']
    assert lines[-2].split()[4:6] == [
        'backbone.layer4.1.conv1.weight', 'backbone.layer4.1.bn2.bias'
    ]
    assert 'OLOR rolls back' in lines[-1]


def test_modules_without_blocks_are_one_layer():
    from mmcv.cnn import ConvModule

    from olor_mm.layers.numbering import number_module
    assert len(number_module(nn.ConvTranspose2d(2, 2, 2)).layers) == 1
    assert len(
        number_module(ConvModule(3, 4, 3,
                                 norm_cfg=dict(type='BN'))).layers) == 1
    # a head: its own parameter, a conv unit, a classifier, no repeated
    # block: one layer in registration order
    head = nn.Module()
    head.cls_token = nn.Parameter(nn.init.zeros_(nn.Linear(1, 1).weight))
    head.bottleneck = ConvModule(3, 4, 3, norm_cfg=dict(type='BN'))
    head.conv_seg = nn.Conv2d(4, 2, 1)
    numbered = number_module(head)
    assert numbered.layers == [[
        'cls_token', 'bottleneck.conv.weight', 'bottleneck.bn.weight',
        'bottleneck.bn.bias', 'conv_seg.weight', 'conv_seg.bias'
    ]]


def _stage_sizes(model):
    from olor_mm.layers.numbering import stage_groups
    groups = stage_groups(model, [n for n, _ in model.named_parameters()])
    return {k: len(v) for k, v in groups.items()}


def test_stage_view_of_real_backbones(convnext_scheme):
    """The coarse view counted by hand. ResNet-18: the stem is conv1 + bn1
    (3 tensors); a basic block has two convs and two BNs (6 tensors), the
    first block of stages 2-4 also a downsample conv + BN (3 more)."""
    resnet = Detector(_det(dict(type='ResNet', depth=18)))
    assert _stage_sizes(resnet) == {
        'backbone.stem': 3,
        'backbone.stage1': 12,
        'backbone.stage2': 15,
        'backbone.stage3': 15,
        'backbone.stage4': 15,
        'neck': 2
    }
    # MiT: stage s is its patch embedding, its blocks and its norm
    sizes = _stage_sizes(_mit(1, heads=(1, 1, 1, 1)))
    assert list(sizes) == [f'backbone.stage{k}'
                           for k in range(1, 5)] + ['neck']
    # ConvNeXt: stage s holds downsample_layers.s; the last norm closes 4
    assert _stage_sizes(Detector(ConvNeXtLike())) == {
        'backbone.stage1': 4,
        'backbone.stage2': 4,
        'backbone.stage3': 6,
        'backbone.stage4': 6,
        'neck': 2
    }


def test_E1_a_scheme_under_the_full_dotted_path_applies():
    mod = types.ModuleType('olor_probe_e1.models.backbone')
    exec(
        'import torch.nn as nn\n'
        'class E1Backbone(nn.Module):\n'
        '    def __init__(self):\n'
        '        super().__init__()\n'
        '        self.trunk = nn.ModuleList(nn.Linear(2, 2) for _ in '
        'range(3))\n'
        '        self.embed = nn.Linear(2, 2)\n', mod.__dict__)
    register_layer_scheme(
        'olor_probe_e1.models.backbone.E1Backbone',
        [(r'^embed\.', (-1, )), r'^trunk\.(\d+)\.'],
        force=True)
    net = nn.Module()
    net.backbone = mod.E1Backbone()
    found = layerwise_rollback_groups(net, rollback_max=0.3)
    embed = next(g for g in found
                 if g['params'][0] is net.backbone.embed.weight)
    assert (embed['layer_id'], embed['rollback']) == (0, 0.3)
    with pytest.raises(ValueError, match="'package.ClassName'"):
        register_layer_scheme('E1Backbone', [r'^trunk\.(\d+)\.'])
