"""Plot the backbone's drift from the pretrained weights, per stage.

Reads what :class:`olor_mm.engine.hooks.RollbackDriftHook` logged
(``WORK_DIR/<timestamp>/vis_data/scalars.json``: every timestamp folder of a
work dir, joined in order, so a run resumed one or more times is one curve;
or a scalars.json given directly) and draws one panel per layer group
(stem, stage1, ...) with one curve per run, like MMDetection's
``tools/analysis_tools/analyze_logs.py plot_curve``::

    python tools/analysis_tools/plot_drift.py work_dirs/plain work_dirs/olor \\
        --legend plain OLOR --out drift.png [--lam]

``--lam`` adds a row with each group's mean ``lam_eff``.
"""
import argparse
import glob
import json
import os.path as osp
from collections import OrderedDict

from olor_mm.engine.hooks import KINDS, logged


def find_scalars(path):
    """The scalars.json files of ``path`` in time order: the file itself,
    or every timestamp folder of a work dir (a run and its resumes)."""
    if osp.isfile(path):
        return [path]
    found = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    found = [
        f for f in found
        if any('"drift.' in line or '"drift/' in line for line in open(f))
    ]
    if not found:
        raise FileNotFoundError(
            f'{path}: no */vis_data/scalars.json with drift values; train '
            "with custom_hooks=[dict(type='RollbackDriftHook')] and a "
            "LocalVisBackend (MMDetection's default_runtime has one).")
    return found


def load_series(scalars_json):
    """{'drift.<group>' | 'lam_eff.<group>': ([step], [value])} of one
    scalars.json file, or of several joined: a resumed run logs its
    iterations again from the checkpoint on, and the later file wins; a
    file whose first step is not after the kept run's first step is a new
    run trained into the same work dir, and only it (and what follows)
    counts."""
    files = [scalars_json] if isinstance(scalars_json, str) else scalars_json
    points, first = OrderedDict(), None
    for path in files:
        with open(path) as f:
            entries = [json.loads(line) for line in f]
        steps = [e.get('step', e.get('iter')) for e in entries if logged(e)]
        if steps and first is not None and steps[0] <= first:
            # starts where the kept run started: not a resume but a new
            # run in the same work dir, which replaces what came before
            points = OrderedDict()
        if steps and (first is None or not points):
            first = steps[0]
        for entry in entries:
            step = entry.get('step', entry.get('iter'))
            for kind in KINDS:  # the spelling of before 0.3 too
                for group, value in logged(entry, kind).items():
                    points.setdefault(f'{kind}.{group}', {})[step] = value
    return OrderedDict((key, tuple(map(list, zip(*sorted(values.items())))))
                       for key, values in points.items())


def plot_drift(runs, legends, out, title=None, lam=False):
    """``runs``: list of load_series() results; writes ``out`` (PNG)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = list(
        OrderedDict.fromkeys(
            k.split('.', 1)[1] for r in runs for k in r
            if k.startswith('drift.')))
    rows = 2 if lam else 1
    fig, axes = plt.subplots(
        rows,
        len(groups),
        figsize=(3.6 * len(groups), 3.2 * rows),
        squeeze=False)
    for col, group in enumerate(groups):
        for row, kind in enumerate(['drift', 'lam_eff'][:rows]):
            ax = axes[row][col]
            for k, (series, legend) in enumerate(zip(runs, legends)):
                if f'{kind}.{group}' in series:  # a run's colour everywhere
                    xs, ys = series[f'{kind}.{group}']
                    ax.plot(
                        xs,
                        ys,
                        label=legend,
                        linewidth=1.3,
                        color=f'C{k % 10}')
            ax.set_title(f'{kind} {group}', fontsize=9)
            ax.set_xlabel('iter')
            ax.grid(alpha=0.3)
        axes[0][col].set_ylim(bottom=0)
    axes[0][0].set_ylabel('||theta - theta0|| / ||theta0||')
    if lam:
        axes[1][0].set_ylabel('lam_eff')
    axes[0][-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'work_dirs',
        nargs='+',
        help='work dirs (or scalars.json files) to overlay')
    parser.add_argument(
        '--legend',
        nargs='+',
        help='one name per run (default: the work dir names)')
    parser.add_argument('--out', default='drift.png')
    parser.add_argument('--title')
    parser.add_argument(
        '--lam', action='store_true', help='also plot lam_eff per group')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    legends = args.legend or [
        osp.basename(osp.normpath(w)) for w in args.work_dirs
    ]
    if len(legends) != len(args.work_dirs):
        raise SystemExit(f'--legend has {len(legends)} names for '
                         f'{len(args.work_dirs)} runs')
    runs = [load_series(find_scalars(w)) for w in args.work_dirs]
    print(f'wrote {plot_drift(runs, legends, args.out, args.title, args.lam)}')


if __name__ == '__main__':
    main()
