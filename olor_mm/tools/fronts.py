"""Fronts of retention against downstream accuracy: Pareto sets, areas.

A method family (OLOR over ``rollback_max`` at one gamma, WiSE-FT over
alpha, L2-SP over alpha, ...) gives one point (downstream bbox mAP,
retention bbox mAP) per hyper-parameter value. Its front is the set of
points no other point of the family beats in both; its hypervolume is the
area those points dominate above the reference point (0, 0), in mAP^2:
the larger, the better the family trades one for the other. Both are
computed per seed, so the spread over seeds comes with them.
"""
import statistics
from typing import Dict, Iterable, List, Sequence, Tuple

from olor_mm.tools.tables import markdown_table

Point = Tuple[float, float]


def pareto(points: Iterable[Point]) -> List[Point]:
    """The non-dominated points (maximising both), by downstream."""
    pts = sorted(set(points), key=lambda p: (-p[0], -p[1]))
    front, best = [], float('-inf')
    for x, y in pts:
        if y > best:
            front.append((x, y))
            best = y
    return sorted(front)


def hypervolume(points: Iterable[Point], ref: Point = (0.0, 0.0)) -> float:
    """Area dominated by ``points`` and above ``ref`` (both maximised).

    The union of the rectangles ``[ref, p]``: sweeping the front from the
    highest downstream score down, each point adds its strip above the
    retention reached so far.
    """
    area, floor = 0.0, ref[1]
    for x, y in sorted(pareto(points), reverse=True):
        if x > ref[0] and y > floor:
            area += (x - ref[0]) * (y - floor)
            floor = y
    return area


def mean_std(xs: Sequence[float]) -> Tuple[float, float]:
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)


def family_hypervolumes(
        points_by_seed: Dict[int, List[Point]]) -> Dict[int, float]:
    """Hypervolume of a family's points in each seed."""
    return {seed: hypervolume(pts) for seed, pts in points_by_seed.items()}


def dominance(a: Dict[int, List[Point]],
              b: Dict[int, List[Point]]) -> Dict[str, float]:
    """How front ``a`` compares with front ``b``, seed by seed.

    Returns the mean and std over seeds of ``hv(a) - hv(b)`` and the share
    of ``b``'s front points that some point of ``a`` dominates (>= in both,
    > in one), pooled over seeds.
    """
    diffs, covered, total = [], 0, 0
    for seed in sorted(set(a) & set(b)):
        diffs.append(hypervolume(a[seed]) - hypervolume(b[seed]))
        for q in pareto(b[seed]):
            total += 1
            covered += any(p[0] >= q[0] and p[1] >= q[1] and p != q
                           for p in a[seed])
    m, s = mean_std(diffs) if diffs else (float('nan'), float('nan'))
    return dict(
        hv_diff_mean=m,
        hv_diff_std=s,
        dominated_share=covered / total if total else float('nan'))


#: the families that start from the linear probe: each a front of its run
#: interpolated from the probe's weights (alpha 0: the probe, 1: the run)
LPFT_FAMILIES = ('LP-FT', 'OLOR + LP-FT', 'IW-OLOR + LP-FT')
#: the families besides OLOR's (``'OLOR'`` or one per rollback_power,
#: ``'OLOR gamma=G'``) and the importance-weighted rollback's (``'IW-OLOR
#: gamma=G'``), each ending at zero regularisation in the run it starts
#: from (alpha 1.0 of WiSE-FT is the run it interpolates; alpha 0 of an
#: LP-FT family is the linear probe)
OTHER_FAMILIES = ('WiSE-FT', 'OLOR + WiSE-FT', 'L2-SP', 'EWC') + LPFT_FAMILIES
#: methods of one point each (no hyper-parameter): in the tables and plots,
#: compared with OLOR's front point by point; also an LP-FT family's run
#: without interpolations (``param`` None, the results of olor-mm <= 0.9)
SINGLE_POINTS = ('frozen backbone', 'linear probe') + LPFT_FAMILIES


def down(r) -> float:
    """A result's downstream score (``down_score``; the digits benchmark's
    older results: ``down_bbox``)."""
    return r['down_score'] if 'down_score' in r else r['down_bbox']


def up(r) -> float:
    """A result's retention score (``up_score`` or ``up_bbox``)."""
    return r['up_score'] if 'up_score' in r else r['up_bbox']


def is_olor_family(family) -> bool:
    return family == 'OLOR' or str(family).startswith('OLOR gamma=')


def is_iw_family(family) -> bool:
    """The importance-weighted rollback's family, one per gamma."""
    return family == 'IW-OLOR' or str(family).startswith('IW-OLOR gamma=')


def _single(r) -> bool:
    fam = r.get('family') or r.get('method')
    return fam in SINGLE_POINTS and not (fam in LPFT_FAMILIES
                                         and r.get('param') is not None)


def families(results) -> List[str]:
    """OLOR's families (sorted), the importance-weighted rollback's, then
    the others present in ``results`` (an LP-FT family once it has its
    interpolations)."""
    fams = {r.get('family') for r in results if not _single(r)}
    olor = sorted(f for f in fams if is_olor_family(f))
    iw = sorted(f for f in fams if is_iw_family(f))
    return olor + iw + [f for f in OTHER_FAMILIES if f in fams]


def single_points(results, setting) -> Dict[str, list]:
    """``{method family: [records]}`` of the one-point methods."""
    out = {}
    for r in results:
        fam = r.get('family') or r.get('method')
        if r['setting'] == setting and _single(r):
            out.setdefault(fam, []).append(r)
    return out


def on_pooled_front(fam: Dict[str, tuple]) -> Dict[str, str]:
    """``{family: 'k of n'}``: in how many seeds one of the family's own
    points (not its zero end, plain fine-tuning or the linear probe, which
    families share) is on the front of every family's points pooled: no
    point of any family dominates it."""
    seeds = sorted({s for by_seed, _ in fam.values() for s in by_seed})
    hits = {f: 0 for f in fam}
    for seed in seeds:
        front = set(
            pareto(p for by_seed, _ in fam.values()
                   for p in by_seed.get(seed, ())))
        for f, (_, by_param) in fam.items():
            own = [(down(r), up(r)) for records in by_param.values()
                   for r in records
                   if r.get('family') == f and r['seed'] == seed]
            hits[f] += any(p in front for p in own)
    return {f: f'{k} of {len(seeds)}' for f, k in hits.items()}


def dominated_by(front: Dict[int, List[Point]], records) -> str:
    """In how many seeds a point of ``front`` dominates the record's
    (>= in both, > in one): ``'2 of 3'``."""
    hits = total = 0
    for r in records:
        pts = front.get(r['seed'])
        if pts is None:
            continue
        q = (down(r), up(r))
        total += 1
        hits += any(p[0] >= q[0] and p[1] >= q[1] and p != q for p in pts)
    return f'{hits} of {total}'


def _zero_end(family: str, olor_default: str) -> str:
    if family in LPFT_FAMILIES:
        return 'linear probe'
    return olor_default if family == 'OLOR + WiSE-FT' else 'plain'


def family_points(results, setting, family, olor_default):
    """``{seed: [(down, retention), ...]}`` of a family in a setting, its
    zero end included, and ``{param: [records]}`` for the tables."""
    by_seed, by_param = {}, {}
    end = _zero_end(family, olor_default)
    for r in results:
        if r['setting'] != setting:
            continue
        if r.get('family') == family or r['method'] == end:
            param = r.get('param') if r.get('family') == family else (
                1.0 if 'WiSE' in family else 0.0)
            by_seed.setdefault(r['seed'], []).append((down(r), up(r)))
            by_param.setdefault(param, []).append(r)
    return by_seed, by_param


def pm(xs, fmt='{:.1f}') -> str:
    """``'mean ± std'`` of ``xs`` (std 0 for one value)."""
    m, s = mean_std(xs)
    return f'{fmt.format(m)} ± {fmt.format(s)}'


def early_groups(early: dict):
    """The shallowest and deepest backbone groups of an ``early_drift``
    record, in the order RollbackDriftHook logs them (``backbone.stem``,
    ..., ``backbone.stage4``), or None."""
    keys = [k for k in early if k.startswith('backbone.')]
    return (keys[0], keys[-1]) if keys else None


def _early(records) -> str:
    """Mean drift of the shallowest and deepest backbone group at the first
    log line (``early_drift`` of the records), or '-' for runs that did not
    train."""
    early = [r.get('early_drift') for r in records]
    early = [e for e in early if e and early_groups(e)]
    if not early:
        return '-'
    first, last = early_groups(early[0])
    stem = mean_std([e[first] for e in early])[0]
    deep = mean_std([e.get(last, float('nan')) for e in early])[0]
    return f'{stem:.3f} / {deep:.3f}'


def _point_row(family, param: str, records) -> tuple:
    """The fronts table's cells of a point: its family, hyper-parameter,
    downstream and retention scores (mean ± std), early drift."""
    return (family, param, pm([down(r) for r in records]),
            pm([up(r) for r in records]), _early(records))


def _family_rows(fam) -> list:
    """The table rows of the families' points, each run once under its own
    name: a family's zero end is another method's run (plain fine-tuning
    for OLOR, L2-SP, EWC and WiSE-FT; the OLOR run for OLOR + WiSE-FT),
    shown as that method (``plain | -``), not as ``OLOR | 0.0``."""
    rows, ends = [], []
    for f, (_, by_param) in fam.items():
        for param in sorted(by_param):
            records = by_param[param]
            if records[0].get('family') == f:
                rows.append(_point_row(f, f'{param}', records))
            elif records[0].get('family') == 'plain' and not ends:
                ends.append(_point_row('plain', '-', records))
    return ends + rows


def _pretrained_score(pretrained) -> float:
    return pretrained['score'] if 'score' in pretrained else pretrained['bbox']


def _slug(setting: str) -> str:
    return setting.replace(', ', '_').replace(' ', '-')


def write_fronts(results,
                 pretrained,
                 settings,
                 out,
                 olor_default='olor max=0.01 gamma=1.0',
                 metric='bbox mAP'):
    """One plot per setting (``{out}_{setting}.png``); returns the tables
    (markdown) and the summary (hypervolumes, OLOR vs WiSE-FT) per setting.

    ``pretrained``: ``{'score': the upstream model's retention score}``
    (or the digits' ``{'bbox': ...}``).
    """
    import os
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    lines = [
        f'Downstream and retention {metric} (mean ± std over seeds) of every '
        'point; the pretrained model retains '
        f'{_pretrained_score(pretrained):.1f}. Hypervolume: '
        'the area of the (downstream, retention) plane a family\'s points '
        'dominate above (0, 0), in score^2 / 100, per seed; every family '
        'includes its zero-regularisation end (plain fine-tuning; the OLOR '
        'run for OLOR + WiSE-FT; the linear probe, alpha 0, for the LP-FT '
        'families, whose points interpolate their run from the probe\'s '
        'weights). Early drift: ||theta - theta0|| / '
        '||theta0|| of the shallowest and deepest backbone group that '
        'RollbackDriftHook logs at the first log line, mean over seeds.', ''
    ]
    summary = {}
    for setting in settings:
        fam = {
            f: family_points(results, setting, f, olor_default)
            for f in families(results)
        }
        fam = {f: v for f, v in fam.items() if v[0]}
        rows = _family_rows(fam)
        singles = single_points(results, setting)
        rows += [_point_row(f, '-', rs) for f, rs in singles.items()]
        hv = {f: family_hypervolumes(v[0]) for f, v in fam.items()}
        lines += [
            f'## {setting}', '',
            markdown_table(rows, ('family', 'hyper-parameter', 'downstream',
                                  'retention', 'early drift, stem / stage 4'),
                           'lrrrr'), '',
            markdown_table([(f, pm([v / 100 for v in per_seed.values()]))
                            for f, per_seed in hv.items()],
                           ('family', 'hypervolume (score^2 / 100)'), 'lr')
        ]
        olor = [f for f in fam if is_olor_family(f)]
        best = max(
            olor,
            key=lambda f: mean_std(list(hv[f].values()))[0],
            default=None)
        cmp = {}
        if best and 'WiSE-FT' in fam:
            cmp = dominance(fam[best][0], fam['WiSE-FT'][0])
            back = dominance(fam['WiSE-FT'][0], fam[best][0])
            lines += [
                '', f'{best} vs WiSE-FT: hypervolume difference '
                f'{cmp["hv_diff_mean"] / 100:+.1f} ± '
                f'{cmp["hv_diff_std"] / 100:.1f} (per seed, score^2 / '
                f'100); {100 * cmp["dominated_share"]:.0f} % of '
                "WiSE-FT's front points are dominated by an OLOR "
                f'point, {100 * back["dominated_share"]:.0f} % of '
                "OLOR's by a WiSE-FT point."
            ]
            cmp['reverse_dominated_share'] = back['dominated_share']
            cmp['olor_family'] = best
        front = on_pooled_front(fam)
        lines += [
            '', 'On the pooled front (seeds in which one of the family\'s own '
            'points, not the plain run or the linear probe it shares, is '
            'dominated by no point of any family): ' +
            ', '.join(f'{f} {v}' for f, v in front.items()) + '.'
        ]
        beaten = {}
        if best:
            for f, rs in singles.items():
                beaten[f] = dominated_by(fam[best][0], rs)
            if beaten:
                lines += [
                    '', f'One-point methods dominated by a point of {best} '
                    '(seeds): ' + ', '.join(f'{f} {v}'
                                            for f, v in beaten.items()) + '.'
                ]
        lines.append('')
        summary[setting] = dict(
            hypervolume={f: v
                         for f, v in hv.items()},
            on_pooled_front=front,
            olor_vs_wise=cmp,
            single_points_dominated_by_olor=beaten)
        plot_setting(fam, singles, pretrained, setting,
                     f'{out}_{_slug(setting)}.png')
    return '\n'.join(lines), summary


def plot_setting(fam, singles, pretrained, setting, path):
    """Mean points per family with seed error bars; the one-point methods
    and the pretrained model."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.6, 5.0))
    styles = dict(zip(fam, zip('os^vDPX*', plt.cm.tab10.colors)))
    for f, (_, by_param) in fam.items():
        pts = []
        for param, rs in by_param.items():
            d = mean_std([down(r) for r in rs])
            u = mean_std([up(r) for r in rs])
            pts.append((d, u, param))
        pts.sort(key=lambda p: p[0][0])
        marker, colour = styles[f]
        ax.errorbar([p[0][0] for p in pts], [p[1][0] for p in pts],
                    xerr=[p[0][1] for p in pts],
                    yerr=[p[1][1] for p in pts],
                    marker=marker,
                    color=colour,
                    label=f,
                    capsize=2,
                    lw=1.2,
                    ms=5)
        for d, u, param in pts:
            if param not in (0.0, 1.0) or 'WiSE' not in f:
                ax.annotate(
                    f'{param:g}', (d[0], u[0]),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords='offset points',
                    color=colour)
    for k, (f, rs) in enumerate(singles.items()):
        d = mean_std([down(r) for r in rs])
        u = mean_std([up(r) for r in rs])
        ax.errorbar([d[0]], [u[0]],
                    xerr=[d[1]],
                    yerr=[u[1]],
                    marker='sdph'[k % 4],
                    color=('black', 'dimgrey', 'saddlebrown', 'purple')[k % 4],
                    ms=7,
                    label=f,
                    capsize=2,
                    ls='none')
    ax.scatter([0.0], [_pretrained_score(pretrained)],
               marker='*',
               s=150,
               color='grey',
               label='pretrained model',
               zorder=3)
    ax.set_xlabel('downstream score')
    ax.set_ylabel('retention (upstream score, upstream heads)')
    ax.set_title(f'{setting}: mean of the seeds, bars = std', fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc='best')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
