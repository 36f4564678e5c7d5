"""The experiment harness shared by the forgetting tool, the repository's
``tools/demo.py`` and its forgetting benchmark
(``tools/olor_mm_tools/forgetting_experiment.py``): the steps of a
forgetting measurement.

    pre-train upstream -> strip_heads (the class-specific layers) ->
    fine-tune per method downstream -> evaluate downstream ->
    swap_heads (the pretrained class-specific layers back in) ->
    evaluate upstream: the retention

Run options are ``{config key: value}`` dicts, as ``Config.merge_from_dict``
and ``--cfg-options`` take them (:func:`cfg_options` writes the latter).
"""
import contextlib
import io
import itertools
import os

import torch


def load(path):
    """A checkpoint written by MMEngine or by this module, loaded
    weights-only with MMEngine's classes allowed and nothing else (a file
    planted in a work dir runs no code)."""
    from olor_mm.compat import load_from_local_safe
    return load_from_local_safe(path, map_location='cpu')


def schedule_options(iters):
    """A run of ``iters`` iterations: one checkpoint and one validation, at
    the end, and the cosine schedule (param_scheduler[1]) over the run."""
    return {
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters,
        'default_hooks.checkpoint.interval': iters,
        'param_scheduler.1.T_max': iters,
        'param_scheduler.1.end': iters
    }


def data_options(root, coco=True, train_ann=None):
    """Every loader on the set at ``root``; with ``coco`` the evaluators on
    its ``instances_val.json``; ``train_ann``: another training list."""
    opts = {
        f'{d}_dataloader.dataset.data_root': root + '/'
        for d in ('train', 'val', 'test')
    }
    if train_ann is not None:
        opts['train_dataloader.dataset.ann_file'] = train_ann
    if coco:
        for e in ('val', 'test'):
            opts[f'{e}_evaluator.ann_file'] = f'{root}/instances_val.json'
    return opts


def cfg_options(options):
    """``{key: value}`` -> ``['key=value', ...]`` for ``--cfg-options``."""
    return [f'{k}={v}' for k, v in options.items()]


_RUN_IDS = itertools.count()


def build_cfg(path, options, work_dir, name):
    """The config at ``path`` with ``options``, writing into ``work_dir``."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options)
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    # MMEngine shares loggers and visualizers by name within a process: a
    # name of its own per Runner keeps each run's logs in its own work dir
    cfg.experiment_name = f'{name}_{os.getpid()}_{next(_RUN_IDS)}'
    cfg.visualizer.name = cfg.experiment_name
    cfg.default_hooks.logger.interval = 50
    return cfg


def config_model(path, options):
    """The (untrained) model of the config at ``path`` with ``options``:
    what names a checkpoint's drift groups
    (:func:`olor_mm.core.drift.state_dict_drift`)."""
    from mmengine.config import Config

    from olor_mm.tools.pretrained import build_model
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options)
    return build_model(cfg)


def checkpoint_metrics(path, options, checkpoint, work_dir):
    """``Runner.test()``'s metrics of ``checkpoint`` (in this process)."""
    from mmengine.runner import Runner
    cfg = build_cfg(path, options, work_dir, 'eval')
    cfg.load_from = checkpoint
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' report
        return Runner.from_cfg(cfg).test()


def strip_heads(pretrained, heads, out):
    """``pretrained`` without the class-specific layers (name prefixes
    ``heads``): what a fine-tuning on new classes loads."""
    state = {
        k: v
        for k, v in load(pretrained)['state_dict'].items()
        if not k.startswith(heads)
    }
    torch.save(dict(state_dict=state), out)
    return out


def swap_heads(finetuned, pretrained, heads, out):
    """Fine-tuned shared layers + the pretrained class-specific layers
    (prefixes ``heads``): the model whose upstream score is the retention.
    Returns ``(out, names swapped)``."""
    ft = load(finetuned)
    state = dict(ft['state_dict'])
    swapped = []
    for k, v in load(pretrained)['state_dict'].items():
        if k.startswith(heads):
            state[k] = v
            swapped.append(k)
    torch.save(dict(state_dict=state, meta=ft.get('meta', {})), out)
    return out, swapped
