"""Every config in configs/ loads, and its model and optim wrapper build."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import olor_mm

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


def test_there_are_configs():
    names = {osp.basename(p) for p in CONFIGS}
    assert {'mask-rcnn_r50_fpn_olor_1x_coco.py',
            'faster-rcnn_r50_fpn_olor_1x_coco.py',
            'cascade-mask-rcnn_r50_fpn_olor_1x_coco.py',
            'retinanet_r50_fpn_olor_1x_coco.py',
            'mask-rcnn_swin-t-p4-w7_fpn_olor_1x_coco.py'} <= names


@pytest.mark.parametrize('path', CONFIGS,
                         ids=lambda p: osp.relpath(p, ROOT))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['olor_mm']
    scope = cfg.default_scope
    registry = {'mmdet': 'mmdet.registry', 'mmseg': 'mmseg.registry'}[scope]
    models = __import__(registry, fromlist=['MODELS']).MODELS
    cfg.model.pop('init_cfg', None)  # no weights: nothing is downloaded
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(cfg.model)
        ow = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = ow.optimizer.param_groups
    if cfg.optim_wrapper.type == 'OLOROptimWrapper':
        assert isinstance(ow, olor_mm.OLOROptimWrapper)
        rolled = [g for g in groups if g['rollback'] > 0]
        assert rolled, 'nothing rolls back'
        # rollback replaces weight decay on the pretrained groups only
        assert all(g['weight_decay'] == 0 for g in rolled)
        new = [g for g in groups if g['layer_id'] is None]
        assert new and all(
            g['weight_decay'] == cfg.optim_wrapper.optimizer.weight_decay
            for g in new if g['params'][0].ndim > 1)
        lams = {g['layer_id']: g['rollback'] for g in groups
                if g['layer_id'] is not None}
        assert lams[min(lams)] == pytest.approx(
            cfg.optim_wrapper.paramwise_cfg.rollback_max *
            (1 - min(lams) / max(max(lams), 1)))
