"""The numbering engine: its sources in order, prefixes and exclude, the
registry, the coarseness warning and bad patterns; misspelt excludes,
capturing patterns (misuse probe A16, A22), frozen stages taking no depth
(third probe)."""
import logging
import subprocess
import sys
import textwrap

import pytest
import torch.nn as nn
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from toy import ToyClassifier, olor_wrapper_cfg, toy_groups

import olor_mm  # noqa: F401
from olor_mm import layerwise_rollback_groups, register_layer_scheme
from olor_mm.layers.layer_schemes import _SCHEMES
from olor_mm.layers.numbering import number_module, number_pretrained


class Block(nn.Module):
    """Two convolutions: a block for discovery."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 1)
        self.conv2 = nn.Conv2d(2, 2, 1)


class Net(nn.Module):
    """A stem, two stages of blocks, a norm, a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 2, 1)
        self.stages = nn.ModuleList(
            nn.Sequential(Block(), Block()) for _ in range(2))
        self.norm = nn.LayerNorm(2)
        self.head = nn.Linear(2, 5)


class MatcherNet(Net):
    """Net declaring timm's convention: stem, one layer per stage."""

    def group_matcher(self, coarse=False):
        return dict(stem=r'^stem', blocks=r'^stages\.(\d+)')


@pytest.fixture
def scheme():
    """A scheme for MatcherNet: one layer per block (finer than its
    matcher); removed afterwards."""
    register_layer_scheme(MatcherNet,
                          [(r'^stem\.', (0, )), r'^stages\.(\d+)\.(\d+)\.',
                           (r'^(?:norm|head)\.', (9, ))])
    yield
    del _SCHEMES[MatcherNet]


def layers(numbered):
    return [
        sorted({n.split('.')[0]
                for n in layer}) for layer in numbered.layers
    ]


def test_discovery_numbers_blocks_and_keeps_the_rest_in_place():
    numbered = number_module(Net())
    assert numbered.source == 'block discovery'
    names = [layer for layer in numbered.layers]
    assert names[0] == ['stem.weight', 'stem.bias']
    assert names[1][0] == 'stages.0.0.conv1.weight'  # stage 0, block 0
    assert names[4][0] == 'stages.1.1.conv1.weight'
    assert names[5] == ['norm.weight', 'norm.bias', 'head.weight', 'head.bias']
    assert len(names) == 6
    assert numbered.stages['stem.weight'] == 'stem'
    assert numbered.stages['stages.1.0.conv2.bias'] == 'stage2'
    assert numbered.stages['head.bias'] == 'top'


def test_sources_in_their_order(scheme):
    model = MatcherNet()
    # a registered scheme wins over the model's group_matcher
    assert number_module(model).source == 'scheme test_numbering.MatcherNet'
    assert len(number_module(model).layers) == 6
    # layer_patterns win over both
    numbered = number_module(
        model,
        layer_patterns=[
            r'^stages\.(\d+)\.', (r'^(?:stem|norm|head)'
                                  r'\.', (-1, ))
        ])
    assert numbered.source == 'layer_patterns'
    assert len(numbered.layers) == 3


def test_group_matcher_wins_over_discovery(caplog):
    model = MatcherNet()
    with caplog.at_level(logging.WARNING, logger='olor_mm'):
        numbering = number_pretrained(model, ('', ), exclude='head')
    # stem, stage 0, stage 1, the norm (unmatched: timm's last group)
    assert numbering.sources == ['timm group_matcher'] * 4
    assert numbering.layer_of['stages.0.1.conv2.bias'] == 1
    assert numbering.layer_of['norm.weight'] == 3
    # the matcher puts both blocks of a stage into one layer: said
    assert '4 of the 4 repeated blocks of MatcherNet share layers' in \
        caplog.text


def test_prefixes_below_a_declaring_module_are_numbered_within_it():
    model = MatcherNet()
    numbering = number_pretrained(model, ('stem', 'stages'))
    assert numbering.count == 3  # stem, stage 0, stage 1
    assert "numbered within 'the model'" in numbering.notes[0]
    assert 'norm.weight' not in numbering.layer_of


def test_exclude_and_top_level_parameters():
    model = Net()
    model.token = nn.Parameter(nn.init.zeros_(nn.Linear(1, 2).weight))
    numbering = number_pretrained(model, ('', ), exclude=model.head)
    assert 'head.weight' not in numbering.layer_of
    assert numbering.layer_of['token'] == 0  # registered first
    assert numbering.layer_of['stem.weight'] == 0
    numbering = number_pretrained(model, ('token', 'stages'))
    assert numbering.layer_of['token'] == 0
    assert numbering.layer_of['stages.0.0.conv1.weight'] == 1
    with pytest.raises(ValueError, match='pretrained_prefixes'):
        number_pretrained(model, ('head', ), exclude='head')
    with pytest.raises(ValueError, match='exclude'):
        number_pretrained(model, ('', ), exclude=nn.Linear(1, 1))


def test_plain_api_excludes_the_classifier():
    model = Net()
    groups = layerwise_rollback_groups(
        model, ('', ), rollback_max=0.5, exclude=model.head)
    assert [g['layer_id'] for g in groups] == [0, 1, 2, 3, 4, 5, None]
    assert groups[-1]['params'] == [model.head.weight, model.head.bias]
    assert groups[-1]['rollback'] == 0.0
    assert groups[0]['rollback'] == 0.5
    assert groups[5]['rollback'] == 0.0  # the norm: the deepest layer, n


@pytest.mark.parametrize(
    'patterns,match',
    [
        # a catch-all first leaves the later rules dead
        ([r'', r'^stages\.(\d+)\.'], 'rule 1'),
        # rules "in depth order" without captures: one layer
        ([r'^stem\.', r'^stages\.', r'^(?:norm|head)\.'], 'one layer'),
        # one string, not a list of rules
        (r'^stages\.(\d+)\.', 'must be a list of rules'),
        ([(r'^stem\.', 'first')], 'suffix'),
        ([r'^(stem'], 'does not compile'),
    ])
def test_bad_layer_patterns_are_refused(patterns, match):
    with pytest.raises(ValueError, match=match):
        number_module(Net(), layer_patterns=patterns)


def test_param_unit_refuses_patterns():
    with pytest.raises(ValueError, match="layer_unit='param'"):
        number_module(Net(), 'param', layer_patterns=[r'^stem\.'])


def test_registered_scheme_from_a_configs_custom_imports(tmp_path):
    """A user's backbone module registers itself with MMEngine and its
    scheme with olor-mm; a config imports it with custom_imports."""
    (tmp_path / 'my_backbone.py').write_text(
        textwrap.dedent('''
        import torch.nn as nn
        from mmengine.registry import MODELS
        from olor_mm import register_layer_scheme


        @register_layer_scheme(rules=[(r'^embed\\.', (-1, )),
                                      r'^trunk\\.(\\d+)\\.'])
        @MODELS.register_module()
        class MyBackbone(nn.Module):
            def __init__(self):
                super().__init__()
                self.trunk = nn.ModuleList(nn.Linear(2, 2) for _ in range(3))
                self.embed = nn.Linear(2, 2)  # registered last, runs first
        '''))
    (tmp_path / 'cfg.py').write_text(
        textwrap.dedent('''
        custom_imports = dict(imports=['my_backbone', 'olor_mm'],
                              allow_failed_imports=False)
        model = dict(type='MyBackbone')
        optim_wrapper = dict(
            optimizer=dict(type='SGD', lr=0.1),
            constructor='LayerwiseRollbackConstructor',
            paramwise_cfg=dict(pretrained_prefixes=('', ),
                               rollback_max=0.3))
        '''))
    script = textwrap.dedent('''
        from mmengine.config import Config
        from mmengine.optim import build_optim_wrapper
        from mmengine.registry import MODELS
        cfg = Config.fromfile('cfg.py')
        model = MODELS.build(cfg.model)
        ow = build_optim_wrapper(model, cfg.optim_wrapper)
        names = {id(p): n for n, p in model.named_parameters()}
        for g in ow.optimizer.param_groups:
            for p in g['params']:
                print(names[id(p)], g['layer_id'], g['rollback'])
        ''')
    out = subprocess.run([sys.executable, '-c', script],
                         cwd=tmp_path,
                         capture_output=True,
                         text=True,
                         env=dict(
                             __import__('os').environ,
                             PYTHONPATH=str(tmp_path)))
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.stdout.splitlines()
    }
    # embed first although registered last; lam 0.3 (1 - i / 3)
    assert rows['embed.weight'] == ['0', '0.3']
    assert rows['trunk.0.weight'][0] == '1'
    assert float(rows['trunk.0.weight'][1]) == pytest.approx(0.2)
    assert rows['trunk.2.bias'][0] == '3'
    assert float(rows['trunk.2.bias'][1]) == 0.0


@pytest.mark.parametrize('typo', ['haed', 'head.'])
def test_A16_a_misspelt_exclude_is_refused(typo):
    with pytest.raises(ValueError, match=f'entry {typo!r} matches no module'):
        toy_groups(ToyClassifier(), pretrained_prefixes=('', ), exclude=typo)
    cfg = olor_wrapper_cfg(
        dict(type='SGD', lr=0.1),
        pretrained_prefixes=('', ),
        exclude_prefixes=(typo, ),
        layer_patterns=None)
    with pytest.raises(ValueError, match='exclude_prefixes'):
        build_optim_wrapper(ToyClassifier(), cfg)
    # spelt right: the head is left out, the backbone numbered as alone
    model = ToyClassifier()
    whole = toy_groups(
        model, pretrained_prefixes=('', ), exclude='head', layer_patterns=None)
    alone = toy_groups(model, layer_patterns=None)
    head = set(map(id, model.head.parameters()))

    def lams(found):
        return sorted((g['layer_id'], g['rollback']) for g in found
                      if g['layer_id'] is not None)

    assert lams(whole) == lams(alone)
    assert all(g['layer_id'] is None for g in whole
               if head & set(map(id, g['params'])))


def test_A22_a_capture_of_names_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r'must be digits.*\(\?:'):
        toy_groups(
            ToyClassifier(), layer_patterns=[(r'^(conv1|bn1)\.', (0, ))])


def test_the_shipped_mask_rcnn_gives_rollback_max_to_its_first_trained_layer(
        mm_log):
    """The README's Mask R-CNN R50 freezes the stem and stage 1
    (``frozen_stages=1``): they take no depth, so layer2.0 gets
    ``rollback_max=0.01`` (before: 0.0075) and the table lists them as
    frozen."""
    from olor_mm.tools import config_input
    cfg = config_input.load('configs/mmdet/mask-rcnn_r50_fpn_olor_1x_coco.py')
    backbone = dict(cfg.model.backbone, init_cfg=None)
    assert backbone['frozen_stages'] == 1

    class Detector(nn.Module):

        def __init__(self):
            super().__init__()
            with DefaultScope.overwrite_default_scope('mmdet'):
                self.backbone = MMDET_MODELS.build(backbone)
            self.neck = nn.Linear(2, 2)

    model = Detector()
    ow = config_input.rollback_constructor(cfg)(model)
    lam = {
        id(p): g['rollback']
        for g in ow.optimizer.param_groups for p in g['params']
    }
    b = model.backbone
    assert lam[id(b.layer2[0].conv1.weight)] == 0.01
    assert lam[id(b.layer4[2].conv3.weight)] == 0.0
    assert max(lam[id(p)] for p in b.parameters() if p.requires_grad) == 0.01
    table = '\n'.join(r.getMessage() for r in mm_log)
    assert 'frozen' in table and '4 frozen layers take no depth' in table
