"""Resumable fine-tuning runs and what each forgot: the engine of
:mod:`olor_mm.tools.forgetting` (any pair of configs) and the
repository's ``benchmarks/forgetting.py`` (the digits; its jobs are those
of ``tools/olor_mm_tools/forgetting_experiment.py``).

A *job* is one fine-tuning (or one WiSE-FT interpolation) and its
measures:

1. its config (``config`` + ``options``, the seed and ``load_from``) is
   written to ``<work_dir>/config.py`` and trained by an ordinary
   ``tools/train.py`` run (``train_cmd``: another launcher such as
   ``tools/dist_train.sh`` or a Slurm script takes its place);
2. **downstream** = the config's own evaluator on its test set, on the
   last checkpoint;
3. **retention** = the upstream config's evaluator on the upstream test
   set, of the upstream model whose *shared* tensors are replaced by the
   fine-tuned ones: shared are the tensors of the checkpoint the
   fine-tuning chain started from (``pretrained``: ``load_from`` of the
   first stage) that the fine-tuned model has with the same name and shape
   (and the upstream model too). So the upstream heads the fine-tuning did
   not load (class-specific layers of other classes) stay the upstream's.
   A model that forgot nothing scores what the upstream model scores.
4. ``<work_dir>/result.json`` holds the result and the job's
   :func:`signature`; a stopped sweep started again reads it instead of
   training (another config, option, seed or checkpoint trains again).

``run_jobs`` runs jobs ``n`` at a time in worker processes (one CPU thread
each when ``n > 1``). ``train_in_process`` and ``coco_map`` train and score
a config in this process instead (the benchmark's upstream pre-training).
"""
import glob
import json
import multiprocessing as mp
import os
import os.path as osp
import subprocess
import sys
import time
import warnings
from typing import Optional

from olor_mm.engine.hooks import logged
from olor_mm.tools.experiment import build_cfg, checkpoint_metrics, load
from olor_mm.tools.progress import bar, progress_hook

#: the default training command: ``{config}`` is the run's config file
#: (olor-mm's installed train tool: no checkout needed)
TRAIN_CMD = (sys.executable, '-m', 'olor_mm.tools.train', '{config}')
#: metrics MMDetection reports as fractions: shown as percent
FRACTION_PREFIXES = ('coco/', 'pascal_voc/')


def _text_hash(path) -> str:
    """sha1 of a config file's text (an edited method config reruns; its
    ``_base_`` files are not followed)."""
    import hashlib
    if not path or not osp.isfile(path):
        return ''
    with open(path, 'rb') as f:
        return hashlib.sha1(f.read()).hexdigest()[:12]


def signature(job) -> str:
    """What a run's result depends on: a finished run is reused only if
    this matches (another iteration count, data, config or config text
    reruns it)."""
    keys = ('config', 'options', 'seed', 'load_from', 'alpha', 'finetuned',
            'pretrained', 'upstream', 'metrics', 'source', 'frozen_prefixes')
    sig = {k: job.get(k) for k in keys}
    sig['config_text'] = _text_hash(job.get('config'))
    return json.dumps(sig, sort_keys=True, default=str)


def result_path(work_dir: str) -> str:
    return osp.join(work_dir, 'result.json')


def score(metrics: dict, key: str) -> float:
    """``metrics[key]`` in percent (MMDetection's COCO / VOC fractions x
    100); 0 when the evaluator returned nothing (CocoMetric returns no
    metric when the model detected nothing).

    Raises:
        KeyError: when the evaluator returned metrics, but not ``key``.
    """
    if metrics and key not in metrics:
        raise KeyError(f'the evaluator reports {sorted(metrics)}, not '
                       f'{key!r}: choose one with --down-metric / '
                       '--up-metric.')
    value = float(metrics.get(key, 0.0))
    return 100 * value if key.startswith(FRACTION_PREFIXES) else value


def write_config(job) -> str:
    """The run's config: ``config`` with ``options``, its seed,
    ``load_from`` and work dir, written to ``<work_dir>/config.py``."""
    from mmengine.config import Config
    cfg = Config.fromfile(job['config'])
    cfg.merge_from_dict(job.get('options', {}))
    cfg.merge_from_dict({'randomness.seed': job['seed']})
    cfg.load_from = job['load_from']
    cfg.resume = False
    cfg.work_dir = job['work_dir']
    cfg.log_level = 'WARNING'
    if 'logger' in cfg.get('default_hooks', {}):
        cfg.default_hooks.logger.interval = job.get('log_interval', 50)
    # the scores come from this tool's evaluation of the last checkpoint
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    os.makedirs(job['work_dir'], exist_ok=True)
    path = osp.join(job['work_dir'], 'config.py')
    cfg.dump(path)
    return path


def train(job) -> str:
    """Train the job's config with ``train_cmd``; returns the last
    checkpoint. The command's output goes to ``<work_dir>/train.log``."""
    path = write_config(job)
    cmd = [a.format(config=path) for a in job.get('train_cmd', TRAIN_CMD)]
    cmd += ['--work-dir', job['work_dir']]
    env = dict(os.environ)
    if job.get('threads'):
        env.update(
            OMP_NUM_THREADS=str(job['threads']),
            MKL_NUM_THREADS=str(job['threads']))
    log = osp.join(job['work_dir'], 'train.log')
    with open(log, 'w') as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    last = osp.join(job['work_dir'], 'last_checkpoint')
    if done.returncode != 0 or not osp.isfile(last):
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'training failed (exit {done.returncode}): '
                           f'{" ".join(cmd)}\n--- {log} (end) ---\n{tail}')
    with open(last) as f:
        return f.read().strip()


def retention_state(finetuned: dict, upstream: dict, pretrained: dict):
    """The upstream state dict with its shared tensors replaced by the
    fine-tuned ones (module docstring, 3.); returns it and the shared
    names."""
    state, shared = dict(upstream), []
    for name, value in pretrained.items():
        ft = finetuned.get(name)
        up = upstream.get(name)
        if (ft is not None and up is not None and ft.shape == value.shape
                and up.shape == ft.shape):
            state[name] = ft
            shared.append(name)
    return state, shared


def measure(job, checkpoint: str) -> dict:
    """Downstream and retention metrics of ``checkpoint``."""
    import torch
    work = job['work_dir']
    down_keys, up_keys = job['metrics']
    opts = dict(job.get('options', {}), **{'randomness.seed': job['seed']})
    down = checkpoint_metrics(job['config'], opts, checkpoint,
                              osp.join(work, 'eval_down'))
    up_job = job['upstream']
    merged, shared = retention_state(
        load(checkpoint)['state_dict'],
        load(up_job['checkpoint'])['state_dict'],
        load(job['pretrained'])['state_dict'])
    if not shared:
        raise ValueError(
            'retention: the fine-tuned model shares no tensor (same name '
            'and shape) with the upstream checkpoint and the one the '
            'fine-tuning loaded: are the configs a pair?')
    path = osp.join(work, 'retention.pth')
    torch.save(dict(state_dict=merged), path)
    up = checkpoint_metrics(up_job['config'], up_job.get('options', {}), path,
                            osp.join(work, 'eval_up'))
    os.remove(path)
    return dict(
        down_metrics={k: float(v)
                      for k, v in down.items()},
        up_metrics={k: float(v)
                    for k, v in up.items()},
        down_score=score(down, down_keys[0]),
        up_score=score(up, up_keys[0]),
        shared_tensors=len(shared),
        **{
            f'down_{k.split("_")[0].split("/")[-1]}': score(down, k)
            for k in down_keys
        },
        **{
            f'up_{k.split("_")[0].split("/")[-1]}': score(up, k)
            for k in up_keys
        })


def _log_interval(vis_data: str) -> Optional[int]:
    """The LoggerHook interval of the run whose ``vis_data`` this is (from
    the config MMEngine dumped there); None if it cannot be read."""
    from mmengine.config import Config
    paths = glob.glob(osp.join(vis_data, '*.py'))
    if not paths:
        return None
    logger = Config.fromfile(paths[0]).get('default_hooks',
                                           {}).get('logger') or {}
    return logger.get('interval')


def early_drift(work_dir: str):
    """The drift RollbackDriftHook logged at the run's first log line of
    its LoggerHook interval: ``{'backbone.stem': ..., ..., 'iter': 50}``;
    None for a run that did not train (WiSE-FT) or logged no drift.

    The lines MMEngine writes at the end of an epoch in between (iteration
    8 of a 32-image training set at batch 4) are skipped, so that runs on
    data of every size are compared at the same iteration; a run shorter
    than the interval gives its first line.
    """
    first = None
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        interval = _log_interval(osp.dirname(path))
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                drift = logged(row)
                if not drift:
                    continue
                drift['iter'] = row.get('iter')
                if not interval or (drift['iter'] or 0) % interval == 0:
                    return drift
                first = first or drift
    return first


def _finish(job, result, t0):
    """Write the run's result next to it (a stopped sweep resumes)."""
    result = dict(
        job['key'],
        work_dir=job['work_dir'],
        **result,
        total_s=time.time() - t0,
        signature=signature(job))
    with open(result_path(job['work_dir']), 'w') as f:
        json.dump(result, f)
    return result


def quiet():
    """No warnings; olor_mm's modules registered (before MMEngine loads
    a checkpoint or builds a model in this process)."""
    warnings.filterwarnings('ignore')
    import olor_mm  # noqa: F401  (registers; loads MMEngine's checkpoints)


def train_in_process(path, options, work_dir, progress=None):
    """Train the config at ``path`` with ``options`` in this process;
    returns the last checkpoint's path.

    ``progress``: a label to draw a progress bar under (the benchmark's
    pre-training; the parallel fine-tunings of :func:`run_jobs` show one bar
    over all runs instead).
    """
    from mmengine.runner import Runner
    cfg = build_cfg(path, options, work_dir, 'train')
    # coco_map() scores the checkpoint; no validation inside training
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    if progress:
        runner.register_hook(progress_hook(progress, work_dir))
    runner.train()
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def coco_map(path, options, checkpoint, work_dir):
    """bbox and segm mAP (percent) of ``checkpoint`` on the val set of the
    config at ``path`` with ``options`` (in this process)."""
    m = checkpoint_metrics(path, options, checkpoint, work_dir)
    # CocoMetric returns no key when the model detected nothing: mAP 0
    return dict(
        bbox=100 * float(m.get('coco/bbox_mAP', 0.0)),
        segm=100 * float(m.get('coco/segm_mAP', 0.0)))


def run_train_job(job):
    """One fine-tuning and its measures (in a worker process)."""
    import torch
    if job.get('threads'):
        torch.set_num_threads(job['threads'])
    quiet()
    t0 = time.time()
    ckpt = train(job)
    train_s = time.time() - t0
    result = measure(job, ckpt)
    state = load(ckpt)['state_dict']
    if job.get('drift_prefixes'):
        from olor_mm.core.drift import state_dict_drift
        from olor_mm.tools.experiment import config_model
        opts = dict(job.get('options', {}))
        result['drift'] = state_dict_drift(
            state,
            load(job['pretrained'])['state_dict'],
            config_model(job['config'], opts),
            tuple(p.rstrip('.') + '.' for p in job['drift_prefixes']))
    if job.get('frozen_prefixes'):
        check_frozen(state,
                     load(job['pretrained'])['state_dict'],
                     job['frozen_prefixes'], job['work_dir'])
    result['early_drift'] = early_drift(job['work_dir'])
    if job.get('keep_weights'):  # for WiSE-FT and LP-FT, no optimizer
        torch.save(
            dict(state_dict=state), osp.join(job['work_dir'], 'weights.pth'))
    for path in glob.glob(osp.join(job['work_dir'], '*.pth')):
        if osp.basename(path) != 'weights.pth':
            os.remove(path)
    return _finish(job, dict(result, train_s=train_s), t0)


def check_frozen(state: dict, pretrained: dict, prefixes, work_dir) -> None:
    """A linear probe must leave every pretrained tensor under ``prefixes``
    bit-identical (weights and BN statistics).

    Raises:
        RuntimeError: naming the tensors that moved and the usual causes.
    """
    import torch
    moved = [
        k for k, v in pretrained.items() if k.startswith(tuple(prefixes))
        and k in state and not torch.equal(state[k], v)
    ]
    if moved:
        raise RuntimeError(
            f'the linear probe of {work_dir} moved {len(moved)} pretrained '
            f'tensors (e.g. {moved[:3]}): its trunk must stay the '
            "pretrained one. Causes: a schedule with eta_min > 0 lifts the "
            'lr of lr_mult=0 groups (set eta_min=0), BatchNorm statistics '
            'updated in train mode (norm_eval=True), or an optimizer that '
            'changes weights at lr 0.')


def run_wise_job(job):
    """WiSE-FT of a kept fine-tuning: interpolate, then its measures."""
    import torch
    if job.get('threads'):
        torch.set_num_threads(job['threads'])
    quiet()
    from olor_mm.tools.wise_ft import wise_ft
    t0 = time.time()
    os.makedirs(job['work_dir'], exist_ok=True)
    ckpt = osp.join(job['work_dir'], 'wise.pth')
    wise_ft(job['load_from'], job['finetuned'], job['alpha'], ckpt)
    result = measure(job, ckpt)
    os.remove(ckpt)
    return _finish(job, dict(result, train_s=0.0), t0)


def run_job(job):
    return (run_wise_job if job.get('alpha') is not None else run_train_job)(
        job)


def chain(job, source):
    """Mark ``job`` as using ``source``'s kept weights (LP-FT's probe,
    WiSE-FT's fine-tuning): a rerun of the source reruns ``job``."""
    job['source'] = signature(source)
    return job


def _reusable(job):
    path = result_path(job['work_dir'])
    if not osp.isfile(path):
        return None
    with open(path) as f:
        previous = json.load(f)
    weights_missing = job.get('keep_weights') and not osp.isfile(
        osp.join(job['work_dir'], 'weights.pth'))
    if previous.get('signature') == signature(job) and not weights_missing:
        return previous
    return None


def run_jobs(jobs, n_workers, describe=None):
    """Run ``jobs`` ``n_workers`` at a time; returns the results in the
    order of ``jobs``. A job whose ``result.json`` exists with its
    signature is read, not run (a stopped sweep picks up where it was).

    ``describe(result) -> str``: the line printed per finished run.
    """
    done, todo = [], []
    for job in jobs:
        previous = _reusable(job)
        (done if previous else todo).append(previous or job)
    results = list(done)
    runs = bar(len(jobs), 'runs', unit='run')
    runs.update(len(done))
    if done:
        runs.write(f'  {len(done)} of {len(jobs)} runs done before, read '
                   'from their result.json')
    if todo:
        if n_workers > 1:
            for job in todo:
                job.setdefault('threads', 1)
        ctx = mp.get_context('spawn')
        with ctx.Pool(n_workers, maxtasksperchild=8) as pool:
            for r in pool.imap_unordered(run_job, todo):
                results.append(r)
                line = describe(r) if describe else (
                    f"{r['method']} seed {r['seed']}: down "
                    f"{r['down_score']:.1f}, retention {r['up_score']:.1f}")
                runs.write(f'  [{len(results)}/{len(jobs)}] {line} '
                           f"({r['total_s']:.0f} s; {r['work_dir']})")
                runs.update(1)
    runs.close()
    order = {job['work_dir']: i for i, job in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r['work_dir']])
