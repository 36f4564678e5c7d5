"""The forgetting benchmark's report (``benchmarks/forgetting.py``): what
its results become.

The default benchmark's tables (mean ± std over seeds per setting and
method, backbone drift per stage) and its retention-vs-downstream plot,
the ``--sweep`` table and plot, the header every report starts with, the
``.md`` / ``.json`` files, and the runs of a committed ``--fronts`` results
file merged into this invocation's. The fronts' own tables and plots are
:mod:`olor_mm.tools.fronts`'s; the runs are
:mod:`olor_mm_tools.forgetting_experiment`'s.
"""
import json
import os
import os.path as osp
import statistics

from olor_mm.tools.fronts import pm
from olor_mm.tools.tables import markdown_table
from olor_mm_tools.forgetting_experiment import SWEEP_MAX, SWEEP_POWER

#: the backbone groups whose drift the default benchmark's table shows
STAGES = ('stem', 'stage1', 'stage2', 'stage3', 'stage4')
#: the columns of a run's scores and drift, after its name
RUN_COLUMNS = ('downstream bbox mAP', 'downstream segm mAP',
               'retention bbox mAP', 'retention segm mAP', 'backbone drift',
               'neck drift')


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


def _mean_std_cells(rs) -> tuple:
    """The RUN_COLUMNS cells of runs ``rs``: mean ± std over them."""
    scores = [
        pm([r[k] for r in rs])
        for k in ('down_bbox', 'down_segm', 'up_bbox', 'up_segm')
    ]
    drift = [
        pm([r['drift'][k] for r in rs], '{:.3f}') for k in ('backbone', 'neck')
    ]
    return tuple(scores + drift)


def summary_tables(results, up, settings, methods):
    lines = [
        f'Pretrained model on upstream val (digits 0-4): bbox mAP '
        f'{up["bbox"]:.1f}, segm mAP {up["segm"]:.1f}. Retention = the '
        'same upstream val score of the fine-tuned shared layers with the '
        'pretrained class-specific layers put back. Mean ± std over seeds.', ''
    ]
    for setting in settings:
        rows = []
        for method in methods:
            rs = [
                r for r in results
                if r['setting'] == setting and r['method'] == method
            ]
            if rs:
                rows.append((method, ) + _mean_std_cells(rs))
        table = markdown_table(rows, ('method', ) + RUN_COLUMNS, 'l' + 'r' * 6)
        lines += [f'### {setting}', '', table, '']
    rows = []
    for method in methods:
        rs = [r for r in results if r['method'] == method]
        if rs:
            rows.append([method] + [
                f"{statistics.mean(r['drift'][f'backbone.{s}'] for r in rs):.4f}"  # noqa: E501
                for s in STAGES
            ])
    lines += [
        '### backbone drift per stage, ||theta - theta0|| / '
        '||theta0|| (mean over settings and seeds)', '',
        markdown_table(rows, ('method', ) + STAGES, 'l' + 'r' * len(STAGES))
    ]
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


def plot_methods(results, up, settings, out_png):
    """The default benchmark's plot: one panel per setting, one point per
    method and seed."""
    plot(results, up,
         {s: (lambda r, s=s: r['setting'] == s)
          for s in settings}, lambda r: r['method'], out_png,
         'Forgetting vs learning: one point per method and seed')


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
        f'{up["bbox"]:.1f}.', ''
    ]
    rows = [(r['method'], f"{r['down_bbox']:.1f}", f"{r['down_segm']:.1f}",
             f"{r['up_bbox']:.1f}", f"{r['up_segm']:.1f}",
             f"{r['drift']['backbone']:.3f}", f"{r['drift']['neck']:.3f}")
            for r in results]
    lines.append(markdown_table(rows, ('run', ) + RUN_COLUMNS, 'l' + 'r' * 6))
    return '\n'.join(lines)


def with_header(text, args, command, wall, results):
    """The report: its title, the command that made it and what its runs
    cost, then ``text`` (the tables)."""
    title = ('Retention-vs-downstream fronts' if args.fronts else
             'OLOR sweep' if args.sweep else 'Forgetting benchmark')
    # a resumed invocation reuses finished runs: say what they cost
    run_min = sum(r.get('total_s', 0.0) for r in results) / 60
    return (f'# {title}\n\n'
            f'Generated by `{command.strip()}` in {wall / 60:.1f} min '
            f'({args.jobs} jobs; fine-tuning {args.iters} iterations of '
            f'batch 4, pre-training {args.pretrain_iters}); its '
            f'{len(results)} runs (reused ones included) took '
            f'{run_min:.0f} job-minutes, about {run_min / args.jobs:.0f} '
            'min of wall time at this many jobs, pre-training '
            'excluded.\n\n' + text)


def write_results(out, text, payload):
    os.makedirs(osp.dirname(out) or '.', exist_ok=True)
    with open(out + '.md', 'w') as f:
        f.write(text + '\n')
    with open(out + '.json', 'w') as f:
        json.dump(payload, f, indent=1)
