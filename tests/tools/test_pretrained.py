"""Stand-in checkpoints read as the real ones would be, dataset wrappers,
the scale floor of tools/smoke_train.py, on upstream configs nobody shipped.

A stand-in is right when the config's own model, built as the config says
and initialised by its own ``init_weights()`` from the file, holds the
stand-in's values: that is checked here independently of the tool's own
read-back.
"""

import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import olor_mm  # noqa: F401
from olor_mm.tools import pretrained as make_pretrained
from olor_mm.tools import smoke_train


def upstream(spec):
    scope, path = spec.split('::')
    return Config.fromfile(
        osp.join(
            osp.dirname(__import__(scope).__file__), '.mim', 'configs', path))


@pytest.mark.parametrize(
    'spec,owner',
    [
        # MMEngine's Pretrained with prefix='backbone.' (an mmcls checkpoint)
        ('mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py', 'backbone'),
        # PIDNet's own loader: a bare state dict, strict=False
        ('mmseg::pidnet/pidnet-s_2xb6-120k_1024x1024-cityscapes.py', 'backbone'
         ),
        # the init_cfg of STDC's inner backbone (backbone_cfg)
        ('mmseg::stdc/stdc1_in1k-pre_4xb12-80k_cityscapes-512x1024.py',
         'backbone.backbone'),
        # PVT's own loader, an init_cfg without a type
        ('mmdet::pvt/retinanet_pvtv2-b0_fpn_1x_coco.py', 'backbone'),
        # a segmentor's model.pretrained
        ('mmseg::mobilenet_v3/mobilenet-v3-d8-s_lraspp_4xb4-320k_'
         'cityscapes-512x1024.py', 'backbone'),
    ],
    ids=[
        'rtmdet-prefix', 'pidnet-bare', 'stdc-nested', 'pvt-own-loader',
        'model.pretrained'
    ])
def test_stand_in_is_read_by_the_models_own_init(spec, owner, tmp_path):
    cfg = upstream(spec)
    (key, source), = make_pretrained.checkpoint_keys(cfg).items()
    assert str(source).startswith(make_pretrained.REMOTE)
    path = str(tmp_path / 'stand_in.pth')
    expected = make_pretrained.write_stand_in(cfg, source, path)
    make_pretrained.set_key(cfg, key, path)
    assert not any(
        str(v).startswith(make_pretrained.REMOTE)
        for v in make_pretrained.checkpoint_keys(cfg).values())
    scope = cfg.default_scope
    registry = __import__(f'{scope}.registry', fromlist=['MODELS'])
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('backbone', {}).get('norm_cfg', {}).get('type') == \
            'SyncBN':
        model_cfg.backbone.norm_cfg.type = 'BN'
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.MODELS.build(model_cfg)
    dict(model.named_modules())[owner].init_weights()
    params = {
        n: p
        for n, p in model.named_parameters() if n.startswith(owner + '.')
    }
    assert params and all(n in expected for n in params)
    for n, p in params.items():
        assert torch.equal(p.detach(), expected[n]), n


def test_dataset_wrappers_get_the_data(tmp_path):
    """YOLOX trains on a MultiImageMixDataset (mosaic) around CocoDataset."""
    from olor_mm.tools.upstream_layouts import write_layout
    cfg = upstream('mmdet::yolox/yolox_s_8xb8-300e_coco.py')
    assert cfg.train_dataloader.dataset.type == 'MultiImageMixDataset'
    assert smoke_train.layout_of(cfg) == 'coco'
    root = str(tmp_path / 'coco')
    write_layout('coco', root, num_train=4, num_val=2)
    smoke_train.point_to_data(cfg, root)
    inner = cfg.train_dataloader.dataset.dataset
    assert inner.data_root == root
    assert 'data_root' not in cfg.train_dataloader.dataset
    assert smoke_train.check_data(cfg) == 'train 4, val 2, test 2'
    reduced = smoke_train.reduce(cfg, str(tmp_path), 'x', 2, 0.25)
    mosaic = reduced.train_dataloader.dataset.pipeline[0]
    assert mosaic.type == 'Mosaic' and tuple(mosaic.img_scale) == (160, 160)
    assert reduced.train_dataloader.dataset.dataset.indices == 4


def test_a_model_needing_larger_images_is_trained_at_a_larger_scale(
        monkeypatch, capsys):
    """DINO's query top-k needs more feature positions than a quarter of
    its images give: the runs are made again at twice the scale."""
    scales = []

    def train(cfg, tag):
        size = cfg.train_dataloader.dataset.pipeline[0].scale[0]
        scales.append(size)
        if size < 400:
            raise RuntimeError('selected index k out of range')
        return tag

    monkeypatch.setattr(smoke_train, 'train', train)
    cfg = Config(
        dict(
            train_dataloader=dict(
                batch_size=2,
                dataset=dict(
                    type='CocoDataset',
                    pipeline=[dict(type='Resize', scale=(800, 1333))])),
            model=dict(),
            train_cfg=dict(max_iters=10),
            default_hooks=dict(
                checkpoint=dict(type='CheckpointHook'),
                logger=dict(type='LoggerHook')),
            optim_wrapper=dict(paramwise_cfg=dict())))
    args = smoke_train.parse_args(['x.py', '--work-dir', '/tmp/x'])
    _, runners = smoke_train.trainings(cfg, args)
    assert runners == dict(olor='olor', plain='plain')
    assert scales == [200, 400, 400]  # 0.25 fails, 0.5 trains both
    assert 'NOTE scale 0.25 -> 0.5: the model needs larger images' in \
        capsys.readouterr().out
    # another error is not a size: raised as it is
    monkeypatch.setattr(smoke_train, 'train', lambda cfg, tag: 1 / 0
                        if tag else None)
    with pytest.raises(ZeroDivisionError):
        smoke_train.trainings(cfg, args)
