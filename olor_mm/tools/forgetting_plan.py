"""``forgetting --plan``: the runs of a sweep and an estimate of its time.

The estimate comes from one timing run: the sweep's first fine-tuning, cut
to ``k`` iterations, logged every iteration, trained by the same command and
scored as a real run (downstream and retention evaluations). From it:

    t_iter   median time of an iteration (MMEngine's ``time``, iterations
             2..k: the first one warms up)
    t_start  the rest of the timing run's training: start-up, loading,
             saving (the runs do not validate: the tool scores their last
             checkpoint)
    t_eval   one evaluation: half of the run's scoring (downstream, and
             retention on the upstream test set)

and each training run of ``N`` iterations takes ``t_start + N * t_iter +
2 * t_eval``, a WiSE-FT point ``2 * t_eval`` (an interpolation and its
scoring). Runs
that finished before (their ``result.json``) count 0. With ``--jobs J``
the runs are spread over ``J`` workers, each on one thread, as the timing
run was.
"""
import copy
import glob
import json
import math
import os.path as osp
import statistics

from olor_mm.tools.forgetting_runs import _reusable, run_job
from olor_mm.tools.tables import markdown_table


def schedule(config: str, options: dict):
    """The iterations of a run of ``config`` with ``options``; None where
    the length of an epoch is not known without the data (an epoch-based
    loop over a dataset without ``indices``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    loop = cfg.train_cfg
    if 'max_iters' in loop:
        return loop.max_iters
    indices = cfg.train_dataloader.dataset.get('indices')
    if loop.get('max_epochs') is None or not isinstance(indices, int):
        return None
    return loop.max_epochs * math.ceil(
        indices / cfg.train_dataloader.batch_size)


def timing_job(job: dict, iters: int, work: str, threads) -> dict:
    """``job`` cut to ``iters`` iterations, logged at each, in
    ``work/plan``."""
    probe = copy.deepcopy(job)
    opts = dict(probe['options'])
    from mmengine.config import Config
    cfg = Config.fromfile(probe['config'])
    cfg.merge_from_dict(opts)
    if 'max_iters' in cfg.train_cfg:
        opts['train_cfg.max_iters'] = iters
    else:
        opts['train_cfg.max_epochs'] = 1
        opts['train_dataloader.dataset.indices'] = \
            iters * cfg.train_dataloader.batch_size
    probe.update(
        log_interval=1,
        options=opts,
        work_dir=osp.join(work, 'plan', f'timing_{iters}'),
        keep_weights=False)
    probe['key'] = dict(probe['key'], method='timing')
    if threads:
        probe['threads'] = threads
    return probe


def iteration_time(work_dir: str) -> float:
    """Median ``time`` of iterations 2.. in the run's json log."""
    times = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            times += [
                row['time'] for row in map(json.loads, f)
                if 'time' in row and 'loss' in row
            ]
    if len(times) < 2:
        raise RuntimeError(
            f'the timing run in {work_dir} logged {len(times)} training '
            'iterations; give --plan-iters a larger value')
    return statistics.median(times[1:])


def plan(first, second, n_workers: int, iters: int, work: str) -> str:
    """The runs, and the estimate of their time (module docstring)."""
    jobs = first + second
    rows, todo = [], []
    for job in jobs:
        done = _reusable(job) is not None
        key = job['key']
        param = '-' if key['param'] is None else f"{key['param']:g}"
        starts = ('WiSE-FT of ' + osp.basename(osp.dirname(job['finetuned']))
                  if job.get('alpha') is not None else
                  osp.relpath(job['load_from'], work) if job['load_from'].
                  startswith(work) else osp.basename(job['load_from']))
        rows.append([
            key['method'], key['family'], param, key['seed'], starts,
            osp.relpath(job['config'], work) if job['config'].startswith(work)
            else job['config'], 'done' if done else ''
        ])
        if not done:
            todo.append(job)
    table = markdown_table(
        rows,
        ('run', 'method', 'strength', 'seed', 'starts from', 'config', ''),
        'lllrlll')
    lines = [
        f'{len(jobs)} runs ({len(jobs) - len(todo)} done before):', '', table,
        ''
    ]
    trainings = [j for j in todo if j.get('alpha') is None]
    if not todo:
        return '\n'.join(lines + ['nothing left to run.'])
    base = first[0]  # stage two chains to stage one: never empty
    threads = 1 if n_workers > 1 else None
    probe = timing_job(base, iters, work, threads)
    print('\n'.join(lines), flush=True)
    print(
        f"timing run: {iters} iterations of {base['key']['method']}, then "
        f"its scoring, in {probe['work_dir']} ...",
        flush=True)
    result = run_job(probe)
    lines = []
    t_iter = iteration_time(probe['work_dir'])
    t_eval = (result['total_s'] - result['train_s']) / 2
    t_start = max(0.0, result['train_s'] - iters * t_iter)
    per_run, unknown = [], []
    for job in todo:
        if job.get('alpha') is not None:
            per_run.append(2 * t_eval)
            continue
        n = schedule(job['config'], job['options'])
        if n is None:
            unknown.append(job['key']['method'])
            continue
        per_run.append(t_start + n * t_iter + 2 * t_eval)
    total = sum(per_run)
    wall = total / min(n_workers, max(1, len(todo)))
    lines.append(
        f'estimate: {len(todo)} runs to go ({len(trainings)} trainings), '
        f'{total / 60:.1f} run-minutes, about {wall / 60:.1f} min with '
        f'--jobs {n_workers} (from a {iters}-iteration timing run in '
        f"{result['total_s']:.0f} s: {t_iter:.2f} s per iteration, "
        f'{t_start:.0f} s start-up, {t_eval:.0f} s per evaluation; '
        f"{probe['work_dir']})")
    if unknown:
        lines.append(
            f'not estimated: {", ".join(unknown)} (an epoch-based schedule '
            'over a dataset whose length the config does not give: set '
            'train_dataloader.dataset.indices, or count its epochs by hand)')
    return '\n'.join(lines)
