"""Every config in configs/ loads, and its model and optim wrapper build."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from paths import ROOT

import olor_mm
from olor_mm import find_rollback
from olor_mm.core.importance import ImportanceRollbackHandle
from olor_mm.core.penalty import EWCAnchor, L2SPAnchor
from olor_mm.core.theta0 import find_anchor

CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


def test_there_are_configs():
    names = {osp.basename(p) for p in CONFIGS}
    assert {
        'mask-rcnn_r50_fpn_olor_1x_coco.py',
        'faster-rcnn_r50_fpn_olor_1x_coco.py',
        'cascade-mask-rcnn_r50_fpn_olor_1x_coco.py',
        'retinanet_r50_fpn_olor_1x_coco.py',
        'mask-rcnn_swin-t-p4-w7_fpn_olor_1x_coco.py'
    } <= names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
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
    # every fine-tuning config logs the drift (pre-training has no theta0)
    if 'upstream' not in osp.basename(path):
        assert [h['type'] for h in cfg.custom_hooks] == ['RollbackDriftHook']
    method = cfg.optim_wrapper.get('paramwise_cfg', {}).get('method', 'olor')
    penalty = method != 'olor'
    if penalty:  # EWC: L2-SP's anchor, weighted by the Fisher
        anchor = find_anchor(ow.optimizer)
        assert isinstance(anchor, EWCAnchor if method == 'ewc' else L2SPAnchor)
        assert find_rollback(ow.optimizer) is None
        pretrained = {
            id(p)
            for g in groups if g['layer_id'] is not None for p in g['params']
        }
        assert {id(p) for p in anchor.anchored_params} == pretrained
    if 'rollback_max' in cfg.optim_wrapper.get('paramwise_cfg', {}) and \
            not penalty:
        # the rollback is on the optimizer, whatever the wrapper type
        handle = find_rollback(ow.optimizer)
        assert handle is not None and handle.active
        assert handle.scale_with_lr is True
        # importance='fisher': the importance-weighted rollback, w from the
        # config's upstream data (estimated at the first step)
        importance = cfg.optim_wrapper.paramwise_cfg.get('importance')
        assert isinstance(handle, ImportanceRollbackHandle) == bool(importance)
        rolled = [g for g in groups if g['rollback'] > 0]
        assert rolled, 'nothing rolls back'
        # rollback replaces weight decay on the pretrained groups only
        assert all(g['weight_decay'] == 0 for g in rolled)
        new = [g for g in groups if g['layer_id'] is None]
        assert new and all(
            g['weight_decay'] == cfg.optim_wrapper.optimizer.weight_decay
            for g in new if g['params'][0].ndim > 1)
        lams = {
            g['layer_id']: g['rollback']
            for g in groups if g['layer_id'] is not None
        }
        assert lams[min(lams)] == pytest.approx(
            cfg.optim_wrapper.paramwise_cfg.rollback_max *
            (1 - min(lams) / max(max(lams), 1)))


#: Pretrained layers (n + 1) of each mmseg headline config's backbone.
MMSEG_LAYERS = {
    'upernet_r50_olor_4xb4-80k_ade20k-512x512.py': 17,  # stem + 16 blocks
    'upernet_r50_olor_4xb2-40k_cityscapes-512x1024.py': 17,
    'deeplabv3plus_r50-d8_olor_4xb4-80k_ade20k-512x512.py': 17,
    # patch embed + 12 blocks + 4 stage ends (merging + out norm)
    'upernet_swin-t_olor_8xb2-160k_ade20k-512x512.py': 17,
    # per stage: patch embed + 2 blocks + norm
    'segformer_mit-b0_olor_8xb2-160k_ade20k-512x512.py': 16,
}


@pytest.mark.parametrize('name', sorted(MMSEG_LAYERS))
def test_mmseg_layer_table(name, mm_log):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'mmseg', name))
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
        ow = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    ids = {
        names[id(g['params'][0])]: g['layer_id']
        for g in ow.optimizer.param_groups if g['layer_id'] is not None
    }
    n = MMSEG_LAYERS[name] - 1
    assert sorted(set(ids.values())) == list(range(n + 1))  # 0..n, all used
    assert all(k.startswith('backbone.') for k in ids)
    # lam_i strictly decreases with depth, from rollback_max to 0
    lam = {
        g['layer_id']: g['rollback']
        for g in ow.optimizer.param_groups if g['layer_id'] is not None
    }
    assert lam[0] == 0.01 and lam[n] == 0.0
    assert all(lam[i] > lam[i + 1] for i in range(n))
    # monotone with depth along the blocks of each stage
    import re
    blocks = {}
    for k, i in ids.items():
        m = re.search(
            r'(?:layer(\d+)|stages\.(\d+)\.blocks|layers\.(\d+)\.1)'
            r'\.(\d+)\.', k)
        if m:
            stage = int(next(g for g in m.groups()[:3] if g is not None))
            blocks[(stage, int(m.group(4)))] = i
    order = [blocks[k] for k in sorted(blocks)]
    assert order == sorted(order) and len(set(order)) == len(order)
    # the logged table has one row per layer
    table = next(r.getMessage() for r in mm_log
                 if 'OLOR layer-wise rollback' in r.getMessage())
    rows = [
        line for line in table.splitlines()[2:] if line.split()[0].isdigit()
    ]
    assert [int(r.split()[0]) for r in rows] == list(range(n + 1))


HEADLINE = [
    p for p in CONFIGS if '/configs/mmdet/' in p or '/configs/mmseg/' in p
]


@pytest.mark.parametrize('path', HEADLINE, ids=lambda p: osp.relpath(p, ROOT))
def test_upstream_amp_rewrite_keeps_the_rollback(path, monkeypatch):
    """What MMDetection's / MMSegmentation's tools/train.py --amp do.

    mmseg's asserts the type is 'OptimWrapper'; both then write
    type='AmpOptimWrapper', loss_scale='dynamic'. The wrapper built is
    MMEngine's own and the rollback is still attached, with the config's
    scale_with_lr. (AmpOptimWrapper asserts CUDA: the check is lifted here,
    its GradScaler then disables itself on the CPU.)
    """
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
    from mmengine.optim import AmpOptimWrapper
    cfg = Config.fromfile(path)
    if '/configs/mmseg/' in path:
        assert cfg.optim_wrapper.type == 'OptimWrapper'
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    scope = cfg.default_scope
    models = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    cfg.model.pop('init_cfg', None)
    cfg.model.backbone.pop('init_cfg', None)
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(cfg.model)
        with pytest.warns(UserWarning, match='CUDA is not available'):
            ow = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(ow) is AmpOptimWrapper
    handle = olor_mm.find_rollback(ow.optimizer)
    assert handle.active and handle.scale_with_lr is True
    # (the R50 configs freeze the stem: their largest trainable lam is
    # layer 1's)
    assert 0 < max(g['rollback'] for g in ow.optimizer.param_groups) <= \
        cfg.optim_wrapper.paramwise_cfg.rollback_max
