"""Generated data in the upstream layouts, local pretrained checkpoints.

The data sets load with the upstream dataset classes and configs unchanged
(only ``data_root`` points at them); the stand-in checkpoints load through
each headline config's own ``init_cfg`` with every backbone tensor found;
bad data roots stop with a message naming the path or the config key.
"""
import copy
import glob
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from bad_input import bad_input_cases, check_bad_input
from mmengine.config import Config
from mmengine.registry import DefaultScope
from paths import ROOT

import olor_mm  # noqa: F401
from olor_mm.tools.pretrained import build_model, write_pretrained
from olor_mm.tools.smoke_train import SmokeError, check_data, point_to_data
from olor_mm.tools.upstream_layouts import COCO_CLASSES, COCO_IDS, write_layout

UPSTREAM_DATA = {  # the data configs as MMDetection / MMSegmentation ship
    'coco': ('mmdet', '_base_/datasets/coco_instance.py'),
    'ade20k': ('mmseg', '_base_/datasets/ade20k.py'),
    'cityscapes': ('mmseg', '_base_/datasets/cityscapes.py'),
}


def _dataset(cfg, key, scope):
    registry = __import__(f'{scope}.registry', fromlist=['DATASETS'])
    with DefaultScope.overwrite_default_scope(scope):
        return registry.DATASETS.build(copy.deepcopy(cfg[key].dataset))


@pytest.fixture(scope='module')
def layouts(tmp_path_factory):
    out = tmp_path_factory.mktemp('layouts')
    roots = {}
    for layout in UPSTREAM_DATA:
        roots[layout] = write_layout(
            layout, str(out / layout), num_train=3, num_val=2)['root']
    return roots


def _upstream(layout, root):
    package, rel = UPSTREAM_DATA[layout]
    module = __import__(package)
    cfg = Config.fromfile(
        osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel))
    cfg.default_scope = package
    point_to_data(cfg, root)
    return cfg


def test_coco_layout_loads_with_mmdets_coco_dataset(layouts):
    from mmdet.datasets import CocoDataset
    root = layouts['coco']
    assert sorted(os.listdir(root)) == ['annotations', 'train2017', 'val2017']
    assert sorted(os.listdir(osp.join(root, 'annotations'))) == [
        'instances_train2017.json', 'instances_val2017.json'
    ]
    cfg = _upstream('coco', root)
    assert cfg.val_evaluator.ann_file == osp.join(
        root, 'annotations/instances_val2017.json')
    for key, n in (('train_dataloader', 3), ('val_dataloader', 2)):
        dataset = _dataset(cfg, key, 'mmdet')
        assert isinstance(dataset, CocoDataset) and len(dataset) == n
        assert dataset.metainfo['classes'] == COCO_CLASSES
        assert list(dataset.cat_ids) == list(COCO_IDS)  # COCO's own ids
        sample = dataset[0]
        inst = sample['data_samples'].gt_instances
        assert len(inst) > 0 and inst.masks.masks.any()
        assert inst.labels.max() < 80


@pytest.mark.parametrize('layout, classes, ignore',
                         [('ade20k', 150, True), ('cityscapes', 19, False)])
def test_seg_layouts_load_with_mmsegs_datasets(layouts, layout, classes,
                                               ignore):
    cfg = _upstream(layout, layouts[layout])
    for key in ('train_dataloader', 'val_dataloader'):
        dataset = _dataset(cfg, key, 'mmseg')
        assert len(dataset) == (3 if key.startswith('train') else 2)
        assert len(dataset.metainfo['classes']) == classes
        labels = set()
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            label = cv2.imread(info['seg_map_path'], cv2.IMREAD_UNCHANGED)
            labels |= set(np.unique(label).tolist())
            assert label.shape == cv2.imread(info['img_path']).shape[:2]
        if ignore:  # ADE: 0 is "other", read as 255 by reduce_zero_label
            assert info['reduce_zero_label'] and 0 in labels
            assert max(labels) <= classes
        else:  # Cityscapes train ids
            assert max(labels) < classes
        assert len(labels) > 1
    # the upstream training pipeline runs on it
    sample = _dataset(cfg, 'train_dataloader', 'mmseg')[0]
    seg = sample['data_samples'].gt_sem_seg.data
    assert ((seg < classes) | (seg == 255)).all()


HEADLINE = sorted(
    glob.glob(osp.join(ROOT, 'configs', 'mmdet', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'mmseg', '*.py')))


@pytest.mark.parametrize(
    'path', [p for p in HEADLINE if 'custom' not in p],
    ids=lambda p: osp.basename(p))
def test_stand_in_checkpoint_loads_through_the_configs_init_cfg(
        path, tmp_path, mm_log):
    cfg = Config.fromfile(path)
    ckpt = str(tmp_path / 'backbone.pth')
    expected = write_pretrained(cfg, ckpt)
    if cfg.model.get('pretrained'):  # mmseg's ResNets
        cfg.model.pretrained = ckpt
    else:
        cfg.model.backbone.init_cfg.checkpoint = ckpt
    scope = cfg.default_scope
    registry = __import__(f'{scope}.registry', fromlist=['MODELS'])
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.MODELS.build(cfg.model)
    model.backbone.init_weights()
    state = model.state_dict()
    backbone = [k for k in state if k.startswith('backbone.')]
    assert set(backbone) == set(expected)  # every backbone tensor written
    for k in backbone:
        assert torch.equal(state[k], expected[k]), k  # ... and loaded
    assert not any('missing keys' in r.getMessage() for r in mm_log)
    # unlike the random init a failed load would leave
    fresh = build_model(cfg).state_dict()
    assert not torch.equal(
        fresh['backbone.' +
              next(k for k in model.backbone.state_dict() if 'weight' in k)],
        state['backbone.' +
              next(k for k in model.backbone.state_dict() if 'weight' in k)])


def test_full_detector_checkpoint_has_coco_heads(tmp_path):
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'mmdet',
                 'mask-rcnn_r50_fpn_olor_custom-finetune.py'))
    values = write_pretrained(
        cfg, str(tmp_path / 'det.pth'), full_detector=True, num_classes=80)
    assert values['roi_head.bbox_head.fc_cls.weight'].shape[0] == 81
    assert values['roi_head.mask_head.conv_logits.weight'].shape[0] == 80
    saved = torch.load(tmp_path / 'det.pth', weights_only=False)
    assert set(saved['state_dict']) == set(values)


# ------------------------------------------------------------- bad data
def test_missing_annotation_file_names_the_path(layouts, tmp_path):
    root = str(tmp_path / 'coco')
    write_layout('coco', root, num_train=2, num_val=1)
    os.remove(osp.join(root, 'annotations', 'instances_val2017.json'))
    cfg = _upstream('coco', root)
    with pytest.raises(
            SmokeError, match='val_dataloader.dataset.*'
            'instances_val2017.json'):
        check_data(cfg)


def test_zero_images_names_the_data_root(tmp_path):
    root = write_layout(
        'ade20k', str(tmp_path / 'ade'), num_train=2, num_val=1)['root']
    for f in glob.glob(osp.join(root, 'images', 'training', '*')):
        os.remove(f)
    cfg = _upstream('ade20k', root)
    with pytest.raises(
            SmokeError,
            match='train_dataloader.dataset has zero '
            f'images under data_root={root!r}'):
        check_data(cfg)


def test_labels_outside_the_classes_name_the_file(tmp_path):
    root = write_layout(
        'cityscapes', str(tmp_path / 'cs'), num_train=2, num_val=1)['root']
    (bad, ) = glob.glob(osp.join(root, 'gtFine', 'val', '*', '*.png'))
    label = cv2.imread(bad, cv2.IMREAD_UNCHANGED)
    label[0, 0] = 40  # Cityscapes has train ids 0..18
    cv2.imwrite(bad, label)
    cfg = _upstream('cityscapes', root)
    with pytest.raises(
            SmokeError, match=f'{bad} holds \\[40\\], outside '
            '0..18'):
        check_data(cfg)


def test_unknown_layout_and_misplaced_classes_are_refused(tmp_path):
    with pytest.raises(ValueError, match='--layout'):
        write_layout('voc', str(tmp_path))
    with pytest.raises(ValueError, match='--classes'):
        write_layout('ade20k', str(tmp_path), classes=('a', ))


def test_frozen_pretrained_module_says_nothing_rolls_back(mm_log):
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'mmdet',
                 'retinanet_r50_fpn_olor_1x_coco.py'))
    cfg.model.backbone.frozen_stages = 4  # stem and all four stages
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        build_optim_wrapper(model, cfg.optim_wrapper)
    assert any('nothing will roll back: every parameter of '
               "pretrained_prefixes=('backbone',) is frozen" in r.getMessage()
               for r in mm_log)


def _layout(name):
    from olor_mm.tools.upstream_layouts import write_layout
    write_layout(name, '/tmp/olor_bad_layout')


# (id, call, exception, the key, the fix)
BAD_INPUTS = [
    ('unknown data layout', lambda: _layout('voc'), ValueError,
     r"--layout 'voc'", r'use one of'),
]


@bad_input_cases(BAD_INPUTS)
def test_bad_input_names_the_key_and_the_fix(call, error, key, fix):
    check_bad_input(call, error, key, fix)
