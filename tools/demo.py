"""The olor-mm demo: does rollback keep what the pretrained model knew?

On this 2-core CPU, in 43 minutes on the machine of 2026-11-30 (about 22
on a faster one of the same day; ``make demo``), for detection (a small
Mask R-CNN) and then segmentation (a small UperNet):

1. writes synthetic data sets (tools/make_demo_data.py): upstream classes
   (circle, square, triangle) and downstream classes (star, cross, ring,
   arrow), drawn on textured backgrounds;
2. pre-trains the model on upstream -- the "pretrained model";
3. fine-tunes it on downstream from that checkpoint, same budget and
   seed: plain AdamW, AdamW with OLOR's rollback (the config's
   rollback_max=0.01), and the same at each ``--olor-max`` value (default
   0.1, a strong rollback);
4. evaluates each fine-tuned model on the downstream val set (bbox / segm
   mAP with MMDetection's CocoMetric; mIoU with MMSegmentation's IoUMetric)
   and measures *retention*: the pretrained model's class-specific layers
   (Mask R-CNN: fc_cls, fc_reg, conv_logits; UperNet: both conv_seg) are put
   back on the fine-tuned shared layers and that model is scored on the
   upstream val set. Shared layers that forgot nothing score what the
   pretrained model scored;
5. prints one table per task with a line per OLOR row on what it traded
   against plain fine-tuning, writes them to WORK_DIR/results.{md,json},
   draws the drift per stage to WORK_DIR/{det,seg}/drift.png and a few
   predictions to WORK_DIR/predictions.png.

Everything runs through tools/train.py and the configs in configs/demo/,
as a user would run them. ``--part det`` or ``--part seg`` runs one task.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
from olor_mm.tools.experiment import (cfg_options, checkpoint_metrics,
                                      config_model, data_options, load,
                                      schedule_options, swap_heads)
from olor_mm.tools.progress import train_with_progress
from olor_mm.tools.tables import markdown_table

CONFIGS = osp.join(ROOT, 'configs', 'demo')


@dataclass
class Part:
    """One task of the demo: its configs, data and measures."""
    title: str
    prefix: str  # of the config files
    data_dir: str  # under --data-root
    task: str  # make_demo_data task
    class_specific: Tuple[str, ...]  # layers swapped back for retention
    metrics: Dict[str, str]  # column name -> key in Runner.test() output
    pretrain_iters: int
    finetune_iters: int
    coco: bool  # evaluator needs ann_file

    def config(self, step):
        return osp.join(CONFIGS, f'{self.prefix}_demo-{step}.py')


PARTS = {
    'det':
    Part(
        'detection: Mask R-CNN (R18/4 FPN), bbox / segm mAP',
        'mask-rcnn_r18-tiny',
        'demo',
        'instance',
        ('roi_head.bbox_head.fc_cls.', 'roi_head.bbox_head.fc_reg.',
         'roi_head.mask_head.conv_logits.'), {
             'bbox mAP': 'coco/bbox_mAP',
             'segm mAP': 'coco/segm_mAP'
         },
        pretrain_iters=1500,
        finetune_iters=600,
        coco=True),
    'seg':
    Part(
        'segmentation: UperNet (R18/4), mIoU',
        'upernet_r18-tiny',
        'demo_seg',
        'semseg', ('decode_head.conv_seg.', 'auxiliary_head.conv_seg.'),
        dict(mIoU='mIoU'),
        pretrain_iters=2000,
        finetune_iters=1000,
        coco=False),
}
METHODS = ('plain', 'olor')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='olor-mm demo')
    parser.add_argument('--part', choices=['all', 'det', 'seg'], default='all')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data')
    parser.add_argument(
        '--iters-scale',
        type=float,
        default=1.0,
        help='multiply every training length (for tests)')
    parser.add_argument(
        '--num-train',
        type=int,
        default=200,
        help='training images per data set')
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--olor-max',
        nargs='*',
        type=float,
        default=[0.1],
        metavar='V',
        help='also fine-tune with OLOR at these rollback_max values (the '
        "demo task's own front; rows 'olor max=V'; default 0.1, where the "
        'rollback keeps much of the old task; none: --olor-max with no '
        'value)')
    parser.add_argument(
        '--num-vis',
        type=int,
        default=4,
        help='val images drawn in predictions.png')
    return parser.parse_args(argv)


def run_options(part, iters, data_root):
    """Options that set the length of a run and its data."""
    return dict(
        schedule_options(iters), **data_options(data_root, coco=part.coco))


def train(config, work_dir, options):
    """tools/train.py in a subprocess; returns the last checkpoint."""
    cmd = [
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work_dir,
        '--cfg-options', *cfg_options(options)
    ]
    print(
        f'  $ tools/train.py {osp.relpath(config, ROOT)} --work-dir '
        f'{work_dir}  (log: {work_dir}.log)',
        flush=True)
    train_with_progress(
        cmd, work_dir + '.log', f'  {osp.basename(work_dir)}', cwd=ROOT)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def evaluate(part, config, checkpoint, work_dir, options):
    """The part's metrics of a checkpoint (MMEngine Runner.test)."""
    metrics = checkpoint_metrics(config, options, checkpoint, work_dir)
    scale = 100.0 if part.coco else 1.0  # mAP in [0, 1] -> percent
    return {k: float(metrics[v]) * scale for k, v in part.metrics.items()}


def merge_for_retention(part, finetuned, pretrained, out):
    """Fine-tuned shared layers + the pretrained class-specific layers."""
    out, swapped = swap_heads(finetuned, pretrained, part.class_specific, out)
    assert len(swapped) == 2 * len(part.class_specific), swapped
    return out


def backbone_drift(config, options, checkpoint, pretrained):
    """||theta - theta0|| / ||theta0|| over the backbone's parameters."""
    from olor_mm.core.drift import state_dict_drift
    ft, pre = load(checkpoint)['state_dict'], load(pretrained)['state_dict']
    return state_dict_drift(ft, pre, config_model(config, options),
                            ('backbone.', ))['backbone']


def _predict_tiles(part, config, checkpoint, images):
    """Predictions drawn on ``images`` (3x upscaled so labels stay legible)."""
    import cv2
    if part.coco:
        from mmdet.apis import inference_detector as infer
        from mmdet.apis import init_detector as init
        from mmdet.visualization import DetLocalVisualizer as Vis
    else:
        from mmseg.apis import inference_model as infer
        from mmseg.apis import init_model as init
        from mmseg.visualization import SegLocalVisualizer as Vis
    model = init(config, checkpoint, device='cpu')
    vis = Vis()
    vis.dataset_meta = model.dataset_meta
    tiles = []
    for path in images:
        img = cv2.resize(
            cv2.imread(path), None, fx=3, fy=3,
            interpolation=cv2.INTER_LINEAR)[..., ::-1]
        kwargs = dict(pred_score_thr=0.5) if part.coco else {}
        vis.add_datasample(
            'p', img, infer(model, img), draw_gt=False, **kwargs)
        tiles.append(vis.get_image()[..., ::-1])
    return tiles


def draw_predictions(rows, out_file):
    """``rows``: (title, tiles); one labelled row of tiles each."""
    import cv2
    import numpy as np
    grid = []
    for title, tiles in rows:
        label = np.full((tiles[0].shape[0], 170, 3), 255, np.uint8)
        for k, line in enumerate(title.split('\n')):
            cv2.putText(label, line, (6, 170 + 24 * k),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
        grid.append(np.hstack([label] + tiles))
    width = max(g.shape[1] for g in grid)
    grid = [
        np.pad(
            g, ((0, 0), (0, width - g.shape[1]), (0, 0)), constant_values=255)
        for g in grid
    ]
    cv2.imwrite(out_file, np.vstack(grid))


def format_table(part, rows):
    cols = list(part.metrics)
    header = (['model'] + [f'downstream {c}' for c in cols] +
              [f'upstream {c} (retention)'
               for c in cols] + ['backbone drift', 'train time'])
    table = []
    for r in rows:
        cells = [r['model']]
        for key in [f'down_{c}' for c in cols] + [f'up_{c}' for c in cols]:
            cells.append('-' if r.get(key) is None else f'{r[key]:.1f}')
        cells.append(f"{r['drift']:.3f}")
        cells.append(f"{r['train_s']:.0f} s")
        table.append(cells)
    return markdown_table(table, header, 'l' + 'r' * (len(header) - 1))


def tradeoff_lines(part, rows):
    """One line per OLOR row: what it trades against plain fine-tuning
    (the first metric of the part, downstream and retention)."""
    metric = next(iter(part.metrics))
    by_name = {r['model'].split(': ', 1)[-1]: r for r in rows}
    plain = by_name.get('plain')
    if plain is None:
        return []
    lines = []
    for name, row in by_name.items():
        if not name.startswith('olor'):
            continue
        value = name.split('=', 1)[1] if '=' in name else '0.01 (config)'
        down = row[f'down_{metric}'] - plain[f'down_{metric}']
        up = row[f'up_{metric}'] - plain[f'up_{metric}']
        lines.append(f'- rollback_max={value} vs plain: downstream {metric} '
                     f'{down:+.1f}, retention {up:+.1f}; the backbone drifted '
                     f"{row['drift'] / plain['drift']:.0%} as far as plain's.")
    return lines


def plot_runs(work, names):
    """The drift of each fine-tuning per stage (plot_drift.py), one PNG."""
    from olor_mm.tools import plot_drift as plot_drift
    dirs = [osp.join(work, 'downstream_' + n.replace(' ', '_')) for n in names]
    out = osp.join(work, 'drift.png')
    try:
        plot_drift.main(dirs + ['--legend', *names, '--out', out])
    except (FileNotFoundError, SystemExit) as e:  # runs too short to log
        print(f'  no drift plot: {e}', flush=True)
        return None
    return out


def run_part(key, args):
    """Data, pre-training, both fine-tunings, evaluation: the part's rows."""
    from olor_mm_tools.demo_data import make_instance_sets, make_semseg_sets
    part = PARTS[key]
    print(f'\n== {part.title}', flush=True)
    make: Callable = dict(
        instance=make_instance_sets, semseg=make_semseg_sets)[part.task]
    roots = make(
        osp.join(args.data_root, part.data_dir),
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed)
    scale = args.iters_scale
    up_opts = run_options(part, max(2, round(part.pretrain_iters * scale)),
                          roots['upstream'])
    down_opts = run_options(part, max(2, round(part.finetune_iters * scale)),
                            roots['downstream'])
    seed = {'randomness.seed': args.seed}
    work = osp.join(args.work_dir, key)
    os.makedirs(work, exist_ok=True)

    t0 = time.time()
    pretrained = train(
        part.config('upstream'), osp.join(work, 'upstream'),
        dict(up_opts, **seed))
    rows = [
        dict(
            model='pretrained (upstream)', train_s=time.time() - t0, drift=0.0)
    ]
    # name -> (config, extra options): the two methods, then --olor-max
    runs = {name: (part.config(f'downstream_{name}'), {}) for name in METHODS}
    runs.update({
        f'olor max={v}': (part.config('downstream_olor'), {
            'optim_wrapper.paramwise_cfg.rollback_max': v
        })
        for v in args.olor_max
    })
    finetuned = {}
    for name, (path, extra) in runs.items():
        t0 = time.time()
        finetuned[name] = train(
            path, osp.join(work, 'downstream_' + name.replace(' ', '_')),
            dict(down_opts, **seed, **extra, load_from=pretrained))
        rows.append(
            dict(model=f'fine-tuned: {name}', train_s=time.time() - t0))

    up = evaluate(part, part.config('upstream'), pretrained,
                  osp.join(work, 'eval_upstream'), up_opts)
    rows[0].update({f'up_{k}': v for k, v in up.items()})
    for row, (name, ckpt) in zip(rows[1:], finetuned.items()):
        tag = name.replace(' ', '_')
        down = evaluate(part, runs[name][0], ckpt,
                        osp.join(work, f'eval_down_{tag}'), down_opts)
        merged = merge_for_retention(part, ckpt, pretrained,
                                     osp.join(work, f'retention_{tag}.pth'))
        up = evaluate(part, part.config('upstream'), merged,
                      osp.join(work, f'eval_retention_{tag}'), up_opts)
        row.update({f'down_{k}': v for k, v in down.items()})
        row.update({f'up_{k}': v for k, v in up.items()})
        row['drift'] = backbone_drift(runs[name][0], down_opts, ckpt,
                                      pretrained)

    img_dir = osp.join(roots['downstream'],
                       'images' if part.coco else 'img_dir/val')
    images = sorted(f for f in os.listdir(img_dir) if f.startswith('val_'))
    images = [osp.join(img_dir, f) for f in images[:args.num_vis]]
    vis_rows = [(f'{key}: fine-tuned\n{name}',
                 _predict_tiles(part, runs[name][0], finetuned[name], images))
                for name in METHODS]
    plot_runs(work, list(runs))
    return part, rows, vis_rows


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    warnings.filterwarnings('ignore', category=UserWarning)
    import olor_mm  # noqa: F401  (loads MMEngine's own checkpoints)
    t_start = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    keys = list(PARTS) if args.part == 'all' else [args.part]
    tables, results, vis_rows = [], {}, []
    for key in keys:
        part, rows, vis = run_part(key, args)
        tables.append(f'### {part.title}\n\n' + format_table(part, rows) +
                      '\n\n' + '\n'.join(tradeoff_lines(part, rows)) +
                      f'\n\ndrift per stage: {args.work_dir}/{key}/drift.png')
        results[key] = rows
        vis_rows += vis
    draw_predictions(vis_rows, osp.join(args.work_dir, 'predictions.png'))
    wall = time.time() - t_start
    text = '\n\n'.join(tables)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text + f'\n\nwall time: {wall / 60:.1f} min\n')
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(results=results, wall_s=wall), f, indent=1)
    print('\n' + text)
    print(f'\nwall time {wall / 60:.1f} min; work dirs, results.md and '
          f'predictions.png in {args.work_dir}/')


if __name__ == '__main__':
    main()
