"""The forgetting benchmark's experiment (``benchmarks/forgetting.py``):
what is trained, on what, and how each run is defined.

The digit settings and the fine-tuning methods of ``configs/bench/``, the
grids of ``--sweep`` and ``--fronts``, the upstream pre-training (kept when
its config and options are those of the checkpoint on disk) and the jobs
of every fine-tuning, WiSE-FT interpolation and LP-FT stage, in the form
:func:`olor_mm.tools.forgetting_runs.run_jobs` runs (resumably). What the
results become (tables, plots, files) is
:mod:`olor_mm_tools.forgetting_report`'s.
"""
import json
import os.path as osp
import time

import torch

from olor_mm.tools import experiment
from olor_mm.tools.experiment import schedule_options, strip_heads
from olor_mm.tools.forgetting_runs import (chain, coco_map, quiet,
                                           train_in_process)

#: the repository (this module is tools/olor_mm_tools/forgetting_experiment.py)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

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
#: --fronts: the grid of each family, every family spanning the same
#: retention range (from plain fine-tuning's to about the linear probe's)
#: with at least four points (WiSE-FT's alpha 1.0 is the run it
#: interpolates; every family also holds plain fine-tuning, its zero end;
#: the LP-FT families are their runs interpolated from the probe at
#: FRONT_WISE's alphas). Why this grid, what it leaves out and its time:
#: docs/benchmarks.md, "Fair fronts".
FRONT_MAX = (0.1, 0.3, 1.0)
FRONT_GAMMA = (1.0, )
FRONT_WISE = (0.25, 0.5, 0.75)
FRONT_L2SP = (0.1, 1.0)
#: EWC's alpha (its Fisher divided by its mean: L2-SP's scale)
FRONT_EWC = (0.3, 3.0, 30.0)
#: the importance-weighted rollback (configs/bench/...-downstream_olor-fisher):
#: its rollback_max grid, how F becomes w (importance_norm), and its
#: rollback_max after the linear probe (IW-OLOR + LP-FT)
FRONT_IW = (0.1, 0.3, 1.0)
FRONT_IW_NORM = 'mean'
IW_LPFT = 0.3
#: the OLOR run of OLOR + LP-FT and OLOR + WiSE-FT (rollback_max, gamma):
#: a grid point, so that OLOR + WiSE-FT costs no training of its own
OLOR_DEFAULT = (0.3, 1.0)
SWEEP_MAX = (0.003, 0.01, 0.03, 0.1)
SWEEP_POWER = (0.5, 1.0, 3.0)
#: the scores of a run: COCO bbox, then segm mAP (bbox first: the fronts')
METRICS = (['coco/bbox_mAP',
            'coco/segm_mAP'], ['coco/bbox_mAP', 'coco/segm_mAP'])
#: what the linear probe keeps (configs/bench/...-downstream_lp.py's trunk)
LP_TRUNK = ('backbone.', 'neck.', 'rpn_head.',
            'roi_head.bbox_head.shared_fcs.', 'roi_head.mask_head.convs.',
            'roi_head.mask_head.upsample.')
#: --front-families: every family of --fronts (the one-point methods too)
FRONT_FAMILIES = ('plain', 'frozen backbone', 'OLOR', 'IW-OLOR', 'L2-SP',
                  'EWC', 'linear probe', 'LP-FT', 'OLOR + LP-FT',
                  'IW-OLOR + LP-FT', 'WiSE-FT', 'OLOR + WiSE-FT')
#: the families --fronts trains by default (the fair fronts' families)
DEFAULT_FRONT_FAMILIES = ('plain', 'OLOR', 'IW-OLOR', 'EWC', 'linear probe',
                          'LP-FT', 'OLOR + LP-FT', 'IW-OLOR + LP-FT',
                          'WiSE-FT')
#: the families that start from the linear probe's weights; each is a front
#: of its interpolations from the probe (alpha 0) to its run (alpha 1)
LPFT_FAMILIES = ('LP-FT', 'OLOR + LP-FT', 'IW-OLOR + LP-FT')


def config(suffix):
    return osp.join(CONFIGS, f'{PREFIX}-{suffix}.py')


def pretrain(args, roots):
    """Upstream pre-training; returns (checkpoint, stripped, options, mAP)."""
    torch.set_num_threads(max(1, args.jobs))
    quiet()
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
        trained = train_in_process(
            config('upstream'),
            up_opts,
            work,
            progress='pre-training on upstream')
        # the same path whether trained now or kept: the runs' signatures
        # hold it, and a resumed benchmark must find them equal
        assert osp.samefile(trained, ckpt), (trained, ckpt)
        with open(stamp, 'w') as f:
            f.write(sig)
    print(
        f'pre-trained on upstream: {ckpt} ({time.time() - t0:.0f} s)',
        flush=True)
    up = coco_map(
        config('upstream'), up_opts, ckpt,
        osp.join(args.work_dir, 'eval_upstream'))
    stripped = strip_heads(ckpt, CLASS_SPECIFIC,
                           osp.join(args.work_dir, 'pretrained_shared.pth'))
    return ckpt, stripped, up_opts, up


def _tag(setting, method, seed):
    return f'{setting}_{method}_s{seed}'.replace(', ', '_').replace(' ', '-')


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


def method_variants(args):
    """The default benchmark's runs: every method of ``--methods`` in every
    setting of ``--settings``, ``--seeds`` seeds each."""
    return [(s, m, config(METHODS[m]), {}, seed) for s in args.settings
            for m in args.methods for seed in range(args.seeds)]


def in_definition_order(results):
    """``results`` by setting and method (the order of SETTINGS and
    METHODS), then seed."""
    settings, methods = list(SETTINGS), list(METHODS)

    def key(r):
        return settings.index(r['setting']), methods.index(
            r['method']), r['seed']

    return sorted(results, key=key)


def sweep_variants(setting):
    """``--sweep``'s runs in ``setting`` (seed 0): plain fine-tuning, then
    OLOR over SWEEP_MAX x SWEEP_POWER."""
    variants = [(setting, 'plain', config(METHODS['plain']), {}, 0)]
    variants += [(setting, f'olor max={m} gamma={g}', config(METHODS['olor']),
                  {
                      'optim_wrapper.paramwise_cfg.rollback_max': m,
                      'optim_wrapper.paramwise_cfg.rollback_power': g
                  }, 0) for m in SWEEP_MAX for g in SWEEP_POWER]
    return variants


def _wanted(args):
    """--front-families with what they need: plain is every family's zero
    end; LP-FT starts from the linear probe."""
    wanted = set(args.front_families) | {'plain'}
    if wanted & set(LPFT_FAMILIES):
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
    for m in args.front_iw if 'IW-OLOR' in wanted else ():
        for g in args.front_gamma:
            out.append((f'iw-olor max={m} gamma={g} norm={args.front_iw_norm}',
                        config('downstream_olor-fisher'),
                        iw_options(m, g, args.front_iw_norm),
                        dict(family=f'IW-OLOR gamma={g}', param=m)))
    for a in args.front_l2sp if 'L2-SP' in wanted else ():
        out.append((f'l2sp alpha={a}', config(METHODS['l2sp']), {
            'optim_wrapper.paramwise_cfg.alpha': a
        }, dict(family='L2-SP', param=a)))
    for a in args.front_ewc if 'EWC' in wanted else ():
        out.append((f'ewc alpha={a}', config('downstream_ewc'), {
            'optim_wrapper.paramwise_cfg.alpha': a
        }, dict(family='EWC', param=a)))
    return out


def iw_options(rollback_max, gamma, norm):
    """The importance-weighted rollback's options (its Fisher inputs are
    :func:`ewc_options`)."""
    key = 'optim_wrapper.paramwise_cfg.'
    return {
        key + 'rollback_max': rollback_max,
        key + 'rollback_power': gamma,
        key + 'importance_norm': norm
    }


def ewc_options(roots, shared):
    """The EWC config's Fisher inputs: the pre-trained model on the
    upstream training set of this data root."""
    ckpt = shared[0]
    return {
        'optim_wrapper.paramwise_cfg.fisher_checkpoint':
        osp.abspath(ckpt),
        'optim_wrapper.paramwise_cfg.fisher_model':
        config('upstream'),
        'optim_wrapper.paramwise_cfg.fisher_dataloader.dataset.data_root':
        roots['upstream'] + '/'
    }


def first_stage_jobs(args, roots, shared):
    """The jobs of :func:`front_variants` in every setting and seed, EWC's
    with its Fisher inputs (:func:`ewc_options`)."""
    variants = [(s, m, path, extra, seed, more) for s in args.settings
                for seed in range(args.seeds)
                for m, path, extra, more in front_variants(args)]
    jobs = make_jobs(args, roots, shared, variants)
    for job in jobs:
        if _needs_fisher(job):
            job['options'].update(ewc_options(roots, shared))
    return jobs


def _needs_fisher(job) -> bool:
    return str(job['key'].get('family')).startswith(('EWC', 'IW-OLOR'))


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
                      }), ('IW-OLOR + LP-FT', config('downstream_olor-fisher'),
                           dict(
                               iw_options(args.front_iw_lpft, g,
                                          args.front_iw_norm),
                               **ewc_options(roots, shared))))
            for family, path, extra in stages:
                if family in wanted:
                    # alpha 1.0 of the family's interpolations from the probe
                    then(
                        probe,
                        family,
                        path,
                        dict(schedule_options(args.iters), **extra),
                        family=family,
                        param=1.0,
                        keep_weights=True,
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


def third_stage_jobs(args, roots, shared, second):
    """The fronts of the LP-FT families: their runs interpolated from the
    linear probe's weights (WiSE-FT from the probe), every alpha of
    ``--front-wise``."""
    jobs = []
    for run in second:
        family = run['key'].get('family')
        if family not in LPFT_FAMILIES:
            continue
        setting, seed = run['key']['setting'], run['seed']
        for alpha in args.front_wise:
            jobs.append(
                chain(
                    _job(
                        args,
                        roots,
                        shared,
                        setting,
                        f'{family} alpha={alpha}',
                        seed,
                        config(METHODS['plain']), {},
                        family=family,
                        param=alpha,
                        alpha=alpha,
                        load_from=run['load_from'],
                        finetuned=_weights(run)), run))
    return jobs


def _weights(run) -> str:
    """The weights a finished run left (its ``weights.pth``)."""
    return osp.join(run['work_dir'], 'weights.pth')
