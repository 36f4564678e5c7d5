"""tools/test.py's flags, per scope (olor_mm/cli/eval_flags.py)."""
import pytest
from mmengine.config import Config

from olor_mm.cli import enable_show, enable_tta, set_out


def _cfg(scope, **extra):
    cfg = dict(
        default_scope=scope,
        model=dict(type='M'),
        default_hooks=dict(visualization=dict(type='V', draw=False)),
        visualizer=dict(type='Vis'),
        test_dataloader=dict(
            dataset=dict(pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='PackDetInputs')
            ])),
        test_evaluator=dict(type='IoUMetric'))
    cfg.update(extra)
    return Config(cfg)


def test_show_dir_goes_where_each_scope_reads_it():
    det, seg = _cfg('mmdet'), _cfg('mmseg')
    enable_show(det, False, 'out/det', 2)
    enable_show(seg, True, 'out/seg', 1)
    assert det.default_hooks.visualization.test_out_dir == 'out/det'
    assert 'show_dir' not in seg.default_hooks.visualization
    assert seg.visualizer.save_dir == 'out/seg'
    assert seg.default_hooks.visualization.show is True
    with pytest.raises(RuntimeError, match='default_hooks.visualization'):
        enable_show(_cfg('mmdet', default_hooks={}), True, None, 2)


def test_out_is_a_folder_for_mmseg_and_a_pickle_for_mmdet():
    seg = _cfg('mmseg')
    assert set_out(seg, 'preds') is None
    assert seg.test_evaluator.output_dir == 'preds'
    assert seg.test_evaluator.keep_results is True
    assert type(set_out(_cfg('mmdet'), 'r.pkl')).__name__ == \
        'DumpDetResults'
    with pytest.raises(ValueError, match='.pkl'):
        set_out(_cfg('mmdet'), 'preds')


def test_tta_like_each_scopes_test_py():
    det = _cfg('mmdet')
    with pytest.warns(UserWarning, match='tta_model'):
        enable_tta(det)
    assert det.model.type == 'DetTTAModel'
    assert det.model.module.type == 'M'
    assert det.test_dataloader.dataset.pipeline[-1].type == 'TestTimeAug'
    seg = _cfg(
        'mmseg',
        tta_model=dict(type='SegTTAModel'),
        tta_pipeline=[dict(type='LoadImageFromFile')])
    enable_tta(seg)
    assert seg.model.type == 'SegTTAModel' and seg.model.module.type == 'M'
    with pytest.raises(RuntimeError, match='tta_pipeline'):
        enable_tta(_cfg('mmseg', tta_model=dict(type='SegTTAModel')))
