"""What ``tools/test.py``'s flags do to a config, per scope.

MMDetection's and MMSegmentation's ``tools/test.py`` treat ``--show-dir``,
``--out`` and ``--tta`` differently; olor-mm's single ``tools/test.py``
does what the config's own scope does:

==============  ======================================  =====================
flag            mmdet (DetVisualizationHook, ...)        mmseg
==============  ======================================  =====================
``--show-dir``  hook's ``test_out_dir``                 ``visualizer.save_dir``
``--out``       a ``.pkl`` of the predictions           a folder of predicted
                (``DumpDetResults``)                    label maps (the
                                                        evaluator's
                                                        ``output_dir``)
``--tta``       ``tta_model`` / ``tta_pipeline`` of     ``tta_model`` /
                the config, else MMDetection's flip     ``tta_pipeline`` of
                TTA defaults                            the config (required)
==============  ======================================  =====================
"""
import copy
import warnings

from mmengine.config import ConfigDict


def _scope(cfg) -> str:
    return cfg.get('default_scope') or 'mmdet'


def enable_show(cfg, show: bool, show_dir, wait_time: float) -> None:
    """Turn on the scope's visualization hook, as its test.py does.

    Raises:
        RuntimeError: without ``default_hooks.visualization``.
    """
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show / --show-dir need default_hooks.visualization '
            "(e.g. dict(type='DetVisualizationHook') or "
            "dict(type='SegVisualizationHook')) in the config.")
    vis = hooks['visualization']
    vis['draw'] = True
    if show:
        vis['show'] = True
        vis['wait_time'] = wait_time
    if show_dir:
        if _scope(cfg) == 'mmseg':
            cfg.visualizer['save_dir'] = show_dir
        else:
            vis['test_out_dir'] = show_dir


def enable_tta(cfg) -> None:
    """Test-time augmentation, as the scope's test.py sets it up.

    Raises:
        RuntimeError: for an mmseg config without ``tta_model`` and
            ``tta_pipeline`` (MMSegmentation has no default).
    """
    if _scope(cfg) == 'mmseg':
        missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
        if missing:
            raise RuntimeError(
                f'--tta: the config has no {missing}; MMSegmentation\'s '
                'configs define them in their dataset base (e.g. '
                "mmseg::_base_/datasets/ade20k.py's tta_pipeline and "
                "default_runtime's tta_model).")
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
        return
    if 'tta_model' not in cfg:
        warnings.warn('Cannot find ``tta_model`` in config, '
                      'we will set it as default.')
        cfg.tta_model = dict(
            type='DetTTAModel',
            tta_cfg=dict(
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    if 'tta_pipeline' not in cfg:
        warnings.warn('Cannot find ``tta_pipeline`` in config, '
                      'we will set it as default.')
        data = cfg.test_dataloader.dataset
        while 'dataset' in data:
            data = data['dataset']
        cfg.tta_pipeline = copy.deepcopy(data.pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[
                dict(type='RandomFlip', prob=1.),
                dict(type='RandomFlip', prob=0.)
            ],
                        [
                            dict(
                                type='PackDetInputs',
                                meta_keys=('img_id', 'img_path', 'ori_shape',
                                           'img_shape', 'scale_factor', 'flip',
                                           'flip_direction'))
                        ]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def set_out(cfg, out: str):
    """``--out``: mmseg writes label maps to a folder (returns None); mmdet
    dumps predictions to a pickle (returns the metric to append).

    Raises:
        ValueError: for an mmdet ``--out`` that is not a .pkl / .pickle.
    """
    if _scope(cfg) == 'mmseg':
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
        return None
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out}: MMDetection dumps predictions to a '
                         '.pkl or .pickle file; name one.')
    from mmdet.evaluation import DumpDetResults
    return DumpDetResults(out_file_path=out)
