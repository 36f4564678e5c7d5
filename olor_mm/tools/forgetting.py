"""How much each fine-tuning method forgets, for any pair of configs.

Fine-tune the downstream config ``D`` from the upstream checkpoint with
each method (and each strength of a grid, and each seed), then score every
result twice: downstream (``D``'s evaluator) and retention (the upstream
config ``U``'s evaluator on its own test set, with ``U``'s heads on the
fine-tuned trunk). Writes a table, the Pareto fronts (retention against
downstream), the hypervolume of every method's front with its seed spread
and one recommended ``rollback_max`` with its reason (and
``importance='fisher'`` where the importance-weighted rollback, when
measured, keeps more within the same downstream tolerance)::

    python -m olor_mm.tools.forgetting \\
        --upstream-config U.py --upstream-checkpoint U.pth \\
        --downstream-config D.py --work-dir work_dirs/forgetting_D \\
        --methods plain olor l2sp ewc frozen lpft wise-ft --seeds 3

``D`` is an olor-mm config (``constructor='LayerwiseRollbackConstructor'``
with ``paramwise_cfg.pretrained_prefixes``, as the README's recipes); every
method is ``D`` with one change (the config of each run is written to its
work dir):

==========  ===========================================================
plain       the rollback off (``rollback_max=rollback_min=0``); D's
            optimizer and ``paramwise_cfg`` otherwise (where D turns weight
            decay off on the pretrained layers, so does plain)
olor        D, over the grid of ``rollback_max``
olor-iw     D with ``paramwise_cfg.importance='fisher'`` (the
            importance-weighted rollback), grid of ``rollback_max``; the
            Fisher as for ewc
l2sp        D with ``paramwise_cfg.method='l2sp'``, grid of alpha
ewc         D with ``paramwise_cfg.method='ewc'``, grid of alpha; the Fisher on
            ``--fisher-batches`` batches of U's ``train_dataloader``, with
            U's model and checkpoint
frozen      linear probe: every pretrained layer at ``lr_mult=0`` (D's
            ``pretrained_prefixes``), the new layers train
lpft        LP-FT (Kumar et al., 2022): plain, loaded from frozen's result
olor-lpft   D loaded from frozen's result (OLOR + LP-FT)
wise-ft     WiSE-FT of the plain run, over the grid of alpha
wise-olor   WiSE-FT of D's own OLOR run (OLOR + WiSE-FT)
==========  ===========================================================

Every fine-tuning is an ordinary ``python -m olor_mm.tools.train`` run
(``--train-cmd`` replaces it, e.g. ``'bash tools/dist_train.sh {config}
8'``); a stopped sweep started again with the same arguments reads the runs
that finished (``<work-dir>/runs/*/result.json``) and trains the rest.
``--plan`` prints the runs and an estimate of their time first (one short
timing run), and trains nothing else.
"""
import argparse
import copy
import json
import os
import os.path as osp
import shlex
import statistics
import sys
import time
import warnings

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

METHODS = ('plain', 'olor', 'olor-iw', 'l2sp', 'ewc', 'frozen', 'lpft',
           'olor-lpft', 'wise-ft', 'wise-olor')
#: method -> (family in the report, the grid's key, default grid)
GRIDS = {
    'olor': ('OLOR', 'optim_wrapper.paramwise_cfg.rollback_max', (0.01, 0.03,
                                                                  0.1, 0.3)),
    'olor-iw':
    ('IW-OLOR', 'optim_wrapper.paramwise_cfg.rollback_max', (0.1, 0.3, 1.0)),
    'l2sp': ('L2-SP', 'optim_wrapper.paramwise_cfg.alpha', (0.1, 1.0)),
    'ewc': ('EWC', 'optim_wrapper.paramwise_cfg.alpha', (0.1, 1.0, 10.0)),
    'wise-ft': ('WiSE-FT', None, (0.2, 0.4, 0.6, 0.8)),
}
SINGLE = {
    'plain': 'plain',
    'frozen': 'linear probe',
    'lpft': 'LP-FT',
    'olor-lpft': 'OLOR + LP-FT',
}
#: the metric read first when --down-metric / --up-metric are not given
KNOWN_METRICS = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU', 'pascal_voc/mAP',
                 'accuracy/top1')
SETTING = 'downstream'


def parse_grid(items):
    """``['olor=0.01,0.1', 'ewc=1']`` -> ``{'olor': (0.01, 0.1), ...}``."""
    grid = {}
    for item in items or ():
        name, _, values = item.partition('=')
        if name not in GRIDS:
            raise SystemExit(f'--grid {item}: the methods with a grid are '
                             f'{sorted(GRIDS)}.')
        try:
            vals = tuple(float(v) for v in values.split(',') if v)
        except ValueError:
            raise SystemExit(f'--grid {item}: values are numbers separated '
                             'by commas, e.g. olor=0.01,0.03,0.1')
        if not vals:
            raise SystemExit(f'--grid {item}: give at least one value.')
        grid[name] = vals
    return grid


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Forgetting of fine-tuning methods on any config pair',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument(
        '--upstream-config',
        required=True,
        help='the model the checkpoint was trained with and its data (a '
        "file, or an installed package's: mmdet::mask_rcnn/...)")
    p.add_argument('--upstream-checkpoint', required=True)
    p.add_argument('--downstream-config', required=True)
    p.add_argument('--work-dir', required=True)
    p.add_argument(
        '--load-from',
        help='the checkpoint every fine-tuning starts from (default: the '
        'upstream checkpoint); its tensors define what the two models share')
    p.add_argument(
        '--methods',
        nargs='+',
        default=['plain', 'olor', 'l2sp', 'ewc', 'frozen', 'lpft', 'wise-ft'],
        choices=METHODS)
    p.add_argument(
        '--grid',
        nargs='+',
        metavar='METHOD=V1,V2',
        help='strengths per method: ' +
        ', '.join(f'{m}=' + ','.join(f'{v:g}' for v in g[2])
                  for m, g in GRIDS.items()) + ' (the defaults)')
    p.add_argument('--seeds', type=int, default=1)
    p.add_argument('--jobs', type=int, default=1, help='runs at a time')
    p.add_argument(
        '--train-cmd',
        default=None,
        help="the training command, {config} the run's config (default: "
        "'python -m olor_mm.tools.train {config}'); --work-dir is "
        'appended')
    p.add_argument(
        '--fisher-batches',
        type=int,
        default=50,
        help="EWC: upstream batches the Fisher is averaged over")
    p.add_argument('--down-metric', help='e.g. coco/bbox_mAP, mIoU')
    p.add_argument('--up-metric', help='default: the same as downstream')
    p.add_argument(
        '--plan',
        action='store_true',
        help='print the runs and an estimate of their time, from one short '
        'timing run of --plan-iters iterations (trained and scored as a real '
        'run), and stop')
    p.add_argument(
        '--plan-iters',
        type=int,
        default=6,
        help='iterations of the --plan timing run (6)')
    p.add_argument(
        '--tolerance',
        type=float,
        default=1.0,
        help='recommended rollback_max: the most retention whose downstream '
        'score is within this many points of plain fine-tuning')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='overrides of the downstream config (every run)')
    p.add_argument(
        '--upstream-cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='overrides of the upstream config')
    args = p.parse_args(argv)
    from olor_mm.tools.config_input import one_line_errors, resolve
    with one_line_errors('forgetting'):
        args.upstream_config = resolve(args.upstream_config)
        args.downstream_config = resolve(args.downstream_config)
    args.grid = dict({m: g[2]
                      for m, g in GRIDS.items()}, **parse_grid(args.grid))
    if args.seeds < 1 or args.jobs < 1:
        p.error('--seeds and --jobs must be >= 1')
    if args.plan_iters < 2:
        p.error('--plan-iters must be >= 2')
    return args


def _options(items):
    from mmengine.config import DictAction
    ns = argparse.Namespace()
    DictAction(option_strings=[], dest='o')(None, ns, items)
    return getattr(ns, 'o', {}) or {}


def _load(path, items):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(_options(items))
    return cfg


def method_configs(args, work):
    """Write the base config of each method to ``work/configs`` (module
    docstring); returns ``{method: path}`` and D's rollback_max."""
    import olor_mm  # noqa: F401
    d = _load(args.downstream_config, args.cfg_options)
    ow = d.optim_wrapper
    if ow.get('constructor') != 'LayerwiseRollbackConstructor':
        raise SystemExit(
            f'{args.downstream_config}: optim_wrapper.constructor is '
            f"{ow.get('constructor')!r}; the tool derives every method "
            "from an olor-mm config: set constructor='LayerwiseRollback"
            "Constructor' and paramwise_cfg.pretrained_prefixes (see the "
            "README's recipes).")
    pw = ow.get('paramwise_cfg', {})
    prefixes = tuple(pw.get('pretrained_prefixes', ('backbone', )))
    os.makedirs(osp.join(work, 'configs'), exist_ok=True)
    paths = {}

    def write(name, cfg):
        path = osp.join(work, 'configs', f'{name}.py')
        cfg.dump(path)
        paths[name] = path

    # RollbackDriftHook logs the drift the early-drift rule reads
    hooks = list(d.get('custom_hooks', []))
    if not any(h.get('type') == 'RollbackDriftHook' for h in hooks):
        d.custom_hooks = hooks + [dict(type='RollbackDriftHook')]
    write('olor', d)
    plain = copy.deepcopy(d)
    plain.optim_wrapper.paramwise_cfg.update(rollback_max=0., rollback_min=0.)
    write('plain', plain)
    frozen = copy.deepcopy(plain)
    keys = dict(frozen.optim_wrapper.paramwise_cfg.get('custom_keys', {}))
    for prefix in prefixes:
        keys[prefix] = dict(keys.get(prefix, {}), lr_mult=0., decay_mult=0.)
    frozen.optim_wrapper.paramwise_cfg.custom_keys = keys
    # an lr of 0 stays 0 only if no schedule anneals toward eta_min > 0
    for sched in frozen.get('param_scheduler') or []:
        if 'eta_min' in sched or 'eta_min_ratio' in sched:
            sched.pop('eta_min_ratio', None)
            sched['eta_min'] = 0.
    write('frozen', frozen)
    fisher = {}  # the upstream Fisher's keys (EWC, importance-weighted)
    for name in ('olor-iw', 'l2sp', 'ewc'):  # the same wrapper, one change
        cfg = copy.deepcopy(d)
        if name == 'olor-iw':
            cfg.optim_wrapper.paramwise_cfg.importance = 'fisher'
        else:
            cfg.optim_wrapper.paramwise_cfg.method = name
        if name != 'l2sp':
            if not fisher:
                up = _load(args.upstream_config, args.upstream_cfg_options)
                up_path = osp.join(work, 'configs', 'upstream.py')
                up.dump(up_path)
                fisher = dict(
                    fisher_dataloader=up.train_dataloader,
                    fisher_batches=args.fisher_batches,
                    fisher_model=up_path,
                    fisher_checkpoint=osp.abspath(args.upstream_checkpoint))
            cfg.optim_wrapper.paramwise_cfg.update(fisher)
        write(name, cfg)
    return paths, float(pw.get('rollback_max', 0.01)), prefixes


def _default_metric(metrics: dict) -> str:
    for key in KNOWN_METRICS:
        if key in metrics:
            return key
    numeric = [k for k, v in metrics.items() if isinstance(v, (int, float))]
    if not numeric:
        raise SystemExit('the evaluator returned no number: give '
                         '--down-metric / --up-metric')
    return numeric[0]


def upstream_score(args, work):
    """U's own metrics on its test set (what a model that forgot nothing
    retains); cached in ``work/upstream.json`` for this checkpoint and
    these options."""
    from olor_mm.tools.experiment import checkpoint_metrics
    path = osp.join(work, 'upstream.json')
    key = [osp.abspath(args.upstream_checkpoint), args.upstream_cfg_options]
    if osp.isfile(path):
        with open(path) as f:
            cached = json.load(f)
        if cached.get('key') == key:
            return cached
    import olor_mm  # noqa: F401
    metrics = checkpoint_metrics(args.upstream_config,
                                 _options(args.upstream_cfg_options),
                                 args.upstream_checkpoint,
                                 osp.join(work, 'eval_upstream'))
    metrics = {k: float(v) for k, v in metrics.items()}
    cached = dict(key=key, metrics=metrics)
    with open(path, 'w') as f:
        json.dump(cached, f)
    return cached


def make_jobs(args, work, paths, metrics, olor_max, prefixes):
    """Stage-one jobs (trainings from the checkpoint) and stage-two jobs
    (LP-FT from the probe, WiSE-FT of kept runs)."""
    load_from = osp.abspath(args.load_from or args.upstream_checkpoint)
    train_cmd = shlex.split(args.train_cmd) if args.train_cmd else None
    upstream = dict(
        config=osp.abspath(args.upstream_config),
        options=_options(args.upstream_cfg_options),
        checkpoint=osp.abspath(args.upstream_checkpoint))
    wants = set(args.methods)
    need_plain = wants & {'plain', 'wise-ft', 'l2sp', 'ewc', 'olor', 'olor-iw'}
    need_frozen = wants & {'frozen', 'lpft', 'olor-lpft'}
    need_olor = wants & {'olor', 'wise-olor'}

    def job(method, family, param, seed, config, options=None, **more):
        tag = f'{method}_{param:g}' if param is not None else method
        return dict(
            key=dict(
                setting=SETTING,
                method=tag,
                family=family,
                param=param,
                seed=seed),
            config=config,
            options=options or {},
            seed=seed,
            load_from=more.pop('load_from', load_from),
            pretrained=load_from,
            upstream=upstream,
            metrics=metrics,
            work_dir=osp.join(work, 'runs', f'{tag}_s{seed}'),
            drift_prefixes=None,
            **(dict(train_cmd=train_cmd) if train_cmd else {}),
            **more)

    from olor_mm.tools.forgetting_runs import chain
    first, second = [], []
    for seed in range(args.seeds):
        if need_plain:
            first.append(
                job('plain',
                    'plain',
                    None,
                    seed,
                    paths['plain'],
                    keep_weights='wise-ft' in wants))
        if need_frozen:
            first.append(
                job('frozen',
                    'linear probe',
                    None,
                    seed,
                    paths['frozen'],
                    keep_weights=bool(wants & {'lpft', 'olor-lpft'}),
                    frozen_prefixes=prefixes))
        grid_olor = args.grid['olor'] if 'olor' in wants else ()
        olor_values = sorted(
            set(grid_olor) | ({olor_max} if 'wise-olor' in wants else set()))
        for m in olor_values if need_olor else ():
            first.append(
                job('olor',
                    'OLOR',
                    m,
                    seed,
                    paths['olor'], {GRIDS['olor'][1]: m},
                    keep_weights=m == olor_max and 'wise-olor' in wants))
        for method in ('olor-iw', 'l2sp', 'ewc'):
            for a in args.grid[method] if method in wants else ():
                first.append(
                    job(method, GRIDS[method][0], a, seed, paths[method],
                        {GRIDS[method][1]: a}))
        tagged = {(j['key']['method'], j['seed']): j for j in first}
        probe = osp.join(work, 'runs', f'frozen_s{seed}', 'weights.pth')
        if 'lpft' in wants:
            second.append(
                job('lpft',
                    'LP-FT',
                    None,
                    seed,
                    paths['plain'],
                    load_from=probe))
        if 'olor-lpft' in wants:
            second.append(
                job('olor-lpft',
                    'OLOR + LP-FT',
                    None,
                    seed,
                    paths['olor'],
                    load_from=probe))
        for j in second:
            if j['key']['method'].endswith('lpft') and 'source' not in j:
                chain(j, tagged['frozen', seed])
        sources = []
        if 'wise-ft' in wants:
            sources.append(('wise-ft', 'WiSE-FT', 'plain'))
        if 'wise-olor' in wants:
            sources.append(
                ('wise-olor', 'OLOR + WiSE-FT', f'olor_{olor_max:g}'))
        for method, family, source in sources:
            for a in args.grid['wise-ft']:
                second.append(
                    job(method,
                        family,
                        a,
                        seed,
                        paths['plain'],
                        alpha=a,
                        finetuned=osp.join(work, 'runs', f'{source}_s{seed}',
                                           'weights.pth')))
                chain(second[-1], tagged[source, seed])
    return first, second


def _mean(rs, key):
    return statistics.mean(r[key] for r in rs)


def _by_param(results, family):
    out = {}
    for r in results:
        if r['family'] == family:
            out.setdefault(r['param'], []).append(r)
    return out


def _most_retention(grid, floor):
    """The value of ``grid`` ({param: runs}) that retains the most among
    those whose mean downstream score is ``floor`` or more, or None."""
    within = {
        m: rs
        for m, rs in grid.items() if _mean(rs, 'down_score') >= floor
    }
    return max(
        within, key=lambda m: _mean(within[m], 'up_score'), default=None)


def suggest(results, olor_max, tolerance):
    """The candidates for rollback_max (:func:`recommend` picks one): from
    the front (the most retention whose downstream is within ``tolerance``
    of plain), the same for the importance-weighted rollback when it was
    measured, and from the early drift (the README's rule: the stem's drift
    at the first log line over plain's)."""
    mean = _mean
    plain = [r for r in results if r['family'] == 'plain']
    olor = _by_param(results, 'OLOR')
    if not plain or not olor:
        return None
    floor = mean(plain, 'down_score') - tolerance
    front = _most_retention(olor, floor)
    iw = _by_param(results, 'IW-OLOR')
    iw_front = _most_retention(iw, floor)
    ratios = {}
    from olor_mm.tools.fronts import early_groups
    base = [r['early_drift'] for r in plain if r.get('early_drift')]
    if base and early_groups(base[0]):
        stem = early_groups(base[0])[0]
        ref = statistics.mean(e[stem] for e in base)
        for m, rs in sorted(olor.items()):
            e = [r['early_drift'][stem] for r in rs if r.get('early_drift')]
            if e and ref > 0:
                ratios[m] = statistics.mean(e) / ref
    regime = {}
    for m, q in ratios.items():
        regime[m] = ('like plain fine-tuning' if q >= 0.8 else
                     'the middle ground' if q > 0.35 else 'keeps the old task')
    middle = [m for m, q in sorted(ratios.items()) if q <= 0.65]
    return dict(
        plain_down=mean(plain, 'down_score'),
        tolerance=tolerance,
        from_front=front,
        front_retention=None if front is None else mean(
            olor[front], 'up_score'),
        iw_from_front=iw_front,
        iw_front_retention=None if iw_front is None else mean(
            iw[iw_front], 'up_score'),
        early_drift_ratio=ratios,
        regime=regime,
        from_early_drift=middle[0] if middle else None)


def recommend(suggestion):
    """One ``rollback_max`` and why. The front is measured (downstream and
    retention of every grid value) and decides; the early-drift rule is a
    prediction from the first log lines, for a grid that ran no value in
    the tolerance (then it says where to look). Where the
    importance-weighted rollback was measured and one of its values keeps
    more within the same tolerance, that value is recommended, with
    ``importance='fisher'`` (``suggestion['recommended_importance']``)."""
    front, early = suggestion['from_front'], suggestion['from_early_drift']
    tol, plain = suggestion['tolerance'], suggestion['plain_down']
    iw, iw_keeps = suggestion.get('iw_from_front'), suggestion.get(
        'iw_front_retention')
    suggestion['recommended_importance'] = None
    if iw is not None and (front is None
                           or iw_keeps > suggestion['front_retention']):
        suggestion['recommended_importance'] = 'fisher'
        than = ('' if front is None else
                f" (OLOR's best there, rollback_max={front:g}, retains "
                f"{suggestion['front_retention']:.1f})")
        return iw, ('of every measured value whose downstream score is '
                    'within '
                    f"{tol:g} of plain fine-tuning's ({plain:.1f}), the "
                    f'importance-weighted rollback at this rollback_max '
                    f'retains the most, {iw_keeps:.1f}{than}')
    if front is not None:
        reason = (f'of the grid values whose downstream score is within '
                  f'{tol:g} of plain fine-tuning\'s ({plain:.1f}), it '
                  'retains the most (the measured front)')
        if early is not None and early != front:
            reason += (f'; the early-drift rule, a prediction from the first '
                       f'log lines, would have picked {early:g}: the '
                       'measurement wins')
        return front, reason
    if early is not None:
        return early, (f'no grid value keeps the downstream score within '
                       f"{tol:g} of plain's ({plain:.1f}); this is the "
                       'smallest value whose early drift is in the middle '
                       'ground (65 % of plain\'s or below): measure values '
                       'around it (--grid olor=...)')
    return None, (f'no grid value keeps the downstream score within {tol:g} '
                  f"of plain's ({plain:.1f}) and none drifts in the middle "
                  'ground: try smaller values (--grid olor=...)')


def report(args, results, pretrained, suggestion, wall, out):
    from olor_mm.tools.fronts import write_fronts
    text, summary = write_fronts(
        results,
        pretrained, [SETTING],
        out,
        olor_default=f'olor_{pretrained["olor_max"]:g}',
        metric=f'{pretrained["down_key"]} / {pretrained["up_key"]}')
    command = 'python -m olor_mm.tools.forgetting ' + shlex.join(args.argv)
    lines = [
        '# Forgetting of fine-tuning methods', '',
        f'Generated by `{command}` in {wall / 60:.1f} min; its '
        f'{len(results)} runs ({args.seeds} seed(s), reused ones included) '
        f'took {sum(r.get("total_s", 0.0) for r in results) / 60:.1f} '
        f'job-minutes. Upstream `{args.upstream_config}` '
        f'({pretrained["up_key"]} {pretrained["score"]:.1f}), downstream '
        f'`{args.downstream_config}` ({pretrained["down_key"]}).', '', text
    ]
    if suggestion:
        value, reason = recommend(suggestion)
        suggestion['recommended'] = value
        lines += [
            '## Recommended rollback_max', '',
            (f'**{value:g}**' +
             (" with paramwise_cfg.importance='fisher'"
              if suggestion['recommended_importance'] else '') +
             ': ' if value is not None else '**none**: ') + reason, ''
        ]
        if suggestion['early_drift_ratio']:
            ratios = ', '.join(
                f'{m:g}: {q:.0%} ({suggestion["regime"][m]})'
                for m, q in suggestion['early_drift_ratio'].items())
            lines += [
                'Early drift of each grid value (the shallowest backbone '
                "group's drift at the first log line over plain's; above "
                "80 %: plain fine-tuning's forgetting, 30 % or below: most "
                f'of the old task kept): {ratios}.', ''
            ]
    with open(out + '.md', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(out + '.json', 'w') as f:
        json.dump(
            dict(
                args={k: v
                      for k, v in vars(args).items() if k != 'argv'},
                upstream=pretrained,
                results=results,
                summary=summary,
                suggestion=suggestion,
                wall_s=wall),
            f,
            indent=1)
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    t0 = time.time()
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    paths, olor_max, prefixes = method_configs(args, work)
    up = upstream_score(args, work)
    down_key = args.down_metric or _default_metric(up['metrics'])
    up_key = args.up_metric or down_key
    if up_key not in up['metrics']:
        raise SystemExit(f'--up-metric {up_key}: the upstream evaluator '
                         f'reports {sorted(up["metrics"])}')
    from olor_mm.tools.forgetting_runs import run_jobs, score
    metrics = ([down_key], [up_key])
    first, second = make_jobs(args, work, paths, metrics, olor_max, prefixes)
    if args.plan:
        from olor_mm.tools.forgetting_plan import plan
        print(plan(first, second, args.jobs, args.plan_iters, work))
        return
    results = run_jobs(first, args.jobs) + run_jobs(second, args.jobs)
    pretrained = dict(
        score=score(up['metrics'], up_key),
        up_key=up_key,
        down_key=down_key,
        olor_max=olor_max)
    suggestion = suggest(results, olor_max, args.tolerance)
    out = osp.join(work, 'forgetting')
    text = report(args, results, pretrained, suggestion, time.time() - t0, out)
    print('\n' + text)
    print(f'wrote {out}.md, .json and {out}_{SETTING}.png')


if __name__ == '__main__':
    main()
