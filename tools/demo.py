"""The olor-mm demo: does rollback keep what the backbone knew?

On this CPU, in about 12 minutes (``make demo``):

1. writes the synthetic instance-segmentation sets (tools/make_demo_data.py):
   upstream classes (circle, square, triangle) and downstream classes
   (star, cross, ring, arrow), drawn on textured backgrounds;
2. pre-trains a small Mask R-CNN on upstream -- the "pretrained model";
3. fine-tunes it on downstream twice from that checkpoint, same budget and
   seed: plain AdamW, and AdamW with OLOR's rollback;
4. evaluates each fine-tuned model on the downstream val set (bbox / segm
   mAP, MMDetection's CocoMetric) and measures *retention*: the pretrained
   model's class-specific layers (fc_cls, fc_reg, conv_logits) are put back
   on the fine-tuned shared layers (backbone, FPN, RPN, RoI feature layers)
   and that model is scored on the upstream val set. A model whose shared
   layers forgot nothing scores what the pretrained model scored;
5. prints one table, writes it to WORK_DIR/results.{md,json}, and draws a
   few predictions to WORK_DIR/predictions.png.

Everything runs through tools/train.py and the configs in configs/demo/,
as a user would run them.
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import subprocess
import sys
import time
import warnings

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))

CONFIGS = osp.join(ROOT, 'configs', 'demo')
UPSTREAM_CFG = osp.join(CONFIGS, 'mask-rcnn_r18-tiny_demo-upstream.py')
METHODS = {
    'plain': osp.join(CONFIGS, 'mask-rcnn_r18-tiny_demo-downstream_plain.py'),
    'olor': osp.join(CONFIGS, 'mask-rcnn_r18-tiny_demo-downstream_olor.py'),
}
#: Layers that exist per class: new in fine-tuning, swapped back for the
#: retention measure.
CLASS_SPECIFIC = ('roi_head.bbox_head.fc_cls.', 'roi_head.bbox_head.fc_reg.',
                  'roi_head.mask_head.conv_logits.')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='olor-mm demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/demo')
    parser.add_argument('--pretrain-iters', type=int, default=1500)
    parser.add_argument('--finetune-iters', type=int, default=600)
    parser.add_argument('--num-train', type=int, default=200,
                        help='training images per data set')
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-vis', type=int, default=4,
                        help='val images drawn in predictions.png')
    return parser.parse_args(argv)


def _schedule_options(iters, data_root):
    """--cfg-options that set the length of a run and its data."""
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        f'param_scheduler.1.T_max={iters}', f'param_scheduler.1.end={iters}',
        f'train_dataloader.dataset.data_root={data_root}/',
        f'val_dataloader.dataset.data_root={data_root}/',
        f'test_dataloader.dataset.data_root={data_root}/',
        f'val_evaluator.ann_file={data_root}/instances_val.json',
        f'test_evaluator.ann_file={data_root}/instances_val.json',
    ]


def train(config, work_dir, options):
    """tools/train.py in a subprocess; returns the last checkpoint."""
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
           '--work-dir', work_dir, '--cfg-options', *options]
    print('$', ' '.join(cmd[1:3]), '--work-dir', work_dir, flush=True)
    with open(osp.join(work_dir + '.log'), 'w') as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT,
                       cwd=ROOT)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def evaluate(config, checkpoint, work_dir, options):
    """CocoMetric bbox/segm mAP of a checkpoint (MMEngine Runner.test)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(o.split('=', 1) for o in options))
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.log_level = 'WARNING'
    cfg.experiment_name = f'eval_{osp.basename(work_dir)}'
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' report
        metrics = Runner.from_cfg(cfg).test()
    return {k: float(metrics[f'coco/{k}_mAP']) for k in ('bbox', 'segm')}


def merge_for_retention(finetuned, pretrained, out):
    """Fine-tuned shared layers + the pretrained class-specific layers."""
    ft = torch.load(finetuned, map_location='cpu', weights_only=False)
    pre = torch.load(pretrained, map_location='cpu', weights_only=False)
    state = dict(ft['state_dict'])
    swapped = [k for k in pre['state_dict'] if k.startswith(CLASS_SPECIFIC)]
    assert len(swapped) == 6, swapped
    for k in swapped:
        state[k] = pre['state_dict'][k]
    torch.save(dict(state_dict=state, meta=ft.get('meta', {})), out)
    return out


def backbone_drift(checkpoint, pretrained):
    """||theta - theta0|| / ||theta0|| over the backbone's parameters."""
    ft = torch.load(checkpoint, map_location='cpu', weights_only=False)
    pre = torch.load(pretrained, map_location='cpu', weights_only=False)
    num = den = 0.0
    for k, v in pre['state_dict'].items():
        if k.startswith('backbone.') and v.is_floating_point() and \
                'running_' not in k:
            num += float((ft['state_dict'][k] - v).pow(2).sum())
            den += float(v.pow(2).sum())
    return (num / den)**0.5


def draw_predictions(rows, images, out_file):
    """One row per (title, config, checkpoint), one column per image."""
    import cv2
    import numpy as np
    from mmdet.apis import inference_detector, init_detector
    from mmdet.visualization import DetLocalVisualizer
    vis = DetLocalVisualizer()
    grid = []
    for title, config, checkpoint in rows:
        model = init_detector(config, checkpoint, device='cpu')
        vis.dataset_meta = model.dataset_meta
        tiles = []
        for path in images:
            # drawn at 3x so that the labels stay readable; the model
            # resizes its input to its own scale anyway
            img = cv2.resize(cv2.imread(path), None, fx=3, fy=3,
                             interpolation=cv2.INTER_LINEAR)[..., ::-1]
            result = inference_detector(model, img)
            vis.add_datasample('p', img, result, draw_gt=False,
                               pred_score_thr=0.5)
            tiles.append(vis.get_image()[..., ::-1])
        label = np.full((tiles[0].shape[0], 150, 3), 255, np.uint8)
        for k, line in enumerate(title.split('\n')):
            cv2.putText(label, line, (6, 170 + 24 * k),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
        grid.append(np.hstack([label] + tiles))
    cv2.imwrite(out_file, np.vstack(grid))


def format_table(rows):
    header = ('| model | downstream bbox mAP | downstream segm mAP | '
              'upstream bbox mAP (retention) | upstream segm mAP '
              '(retention) | backbone drift | train time |')
    lines = [header, '|' + '---|' * 7]
    for r in rows:
        cells = [r['model']] + [
            '-' if r.get(k) is None else f'{r[k]:.3f}'
            for k in ('down_bbox', 'down_segm', 'up_bbox', 'up_segm',
                      'drift')
        ] + [f"{r['train_s']:.0f} s" if r.get('train_s') else '-']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    t_start = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    from make_demo_data import make_instance_sets
    roots = make_instance_sets(args.data_root, num_train=args.num_train,
                               num_val=args.num_val, seed=args.seed)
    up_opts = _schedule_options(args.pretrain_iters, roots['upstream'])
    down_opts = _schedule_options(args.finetune_iters, roots['downstream'])
    seed = [f'randomness.seed={args.seed}']

    t0 = time.time()
    pretrained = train(UPSTREAM_CFG, osp.join(args.work_dir, 'upstream'),
                       up_opts + seed)
    rows = [dict(model='pretrained (upstream)', train_s=time.time() - t0)]
    finetuned = {}
    for name, config in METHODS.items():
        t0 = time.time()
        finetuned[name] = train(
            config, osp.join(args.work_dir, f'downstream_{name}'),
            down_opts + seed + [f'load_from={pretrained}'])
        rows.append(dict(model=f'fine-tuned: {name}',
                         train_s=time.time() - t0))

    import olor_mm  # noqa: F401  (checkpoint loading of MMEngine files)
    up = evaluate(UPSTREAM_CFG, pretrained,
                  osp.join(args.work_dir, 'eval_upstream'), up_opts)
    rows[0].update(up_bbox=up['bbox'], up_segm=up['segm'], drift=0.0)
    for row, (name, ckpt) in zip(rows[1:], finetuned.items()):
        down = evaluate(METHODS[name], ckpt,
                        osp.join(args.work_dir, f'eval_down_{name}'),
                        down_opts)
        merged = merge_for_retention(
            ckpt, pretrained,
            osp.join(args.work_dir, f'retention_{name}.pth'))
        up = evaluate(UPSTREAM_CFG, merged,
                      osp.join(args.work_dir, f'eval_retention_{name}'),
                      up_opts)
        row.update(down_bbox=down['bbox'], down_segm=down['segm'],
                   up_bbox=up['bbox'], up_segm=up['segm'],
                   drift=backbone_drift(ckpt, pretrained))

    val_images = sorted(os.listdir(osp.join(roots['downstream'], 'images')))
    val_images = [osp.join(roots['downstream'], 'images', f)
                  for f in val_images if f.startswith('val_')]
    draw_predictions(
        [(f'fine-tuned\n{n}', METHODS[n], c) for n, c in finetuned.items()],
        val_images[:args.num_vis],
        osp.join(args.work_dir, 'predictions.png'))

    table = format_table(rows)
    wall = time.time() - t_start
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + f'\n\nwall time: {wall:.0f} s\n')
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(rows=rows, wall_s=wall), f, indent=1)
    print('\n' + table)
    print(f'\nwall time {wall / 60:.1f} min; work dirs, results.md and '
          f'predictions.png in {args.work_dir}/')


if __name__ == '__main__':
    main()
