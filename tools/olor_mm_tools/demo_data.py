"""Write small synthetic data sets for the demo and the end-to-end tests.

Instance segmentation (``--task instance``, COCO format): drawn shapes on
textured backgrounds, in two sets of disjoint classes::

    OUT/upstream/   circle, square, triangle   (pre-training)
    OUT/downstream/ star, cross, ring, arrow   (fine-tuning)

each with ``images/``, ``instances_train.json`` and ``instances_val.json``.
Masks are polygons, except the ring (it has a hole), stored as RLE.
Semantic segmentation (``--task semseg``, the layout of mmseg's
``BaseSegDataset``): the same kind of images, with PNG label maps (0 is the
background, then the classes in the order above)::

    OUT/upstream/   img_dir/{train,val}/*.png  ann_dir/{train,val}/*.png
    OUT/downstream/ img_dir/{train,val}/*.png  ann_dir/{train,val}/*.png

With ``--layout coco|ade20k|cityscapes`` it writes instead one small data
set in the directory tree and formats of the real one, which the upstream
configs open unchanged (see ``olor_mm/tools/upstream_layouts.py``).

Everything is a deterministic function of ``--seed``.

Examples::

    python tools/make_demo_data.py --out data/demo --img-size 128 \\
        --num-train 200 --num-val 40
    python tools/make_demo_data.py --task semseg --out data/demo_seg
    python tools/make_demo_data.py --layout coco --out data/coco
    python tools/make_demo_data.py --layout ade20k --out data/ade
    python tools/make_demo_data.py --layout cityscapes --out data/cityscapes
"""
import argparse
import json
import os
import os.path as osp

import cv2
import numpy as np

from olor_mm.tools.drawing import (DOWNSTREAM, UPSTREAM, coco_annotation,
                                   draw_image)
from olor_mm.tools.upstream_layouts import write_layout


def write_coco_split(root, split, classes, num_images, size, max_objects, rng):
    """Images under root/images and root/instances_<split>.json."""
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, annotations = [], []
    for k in range(num_images):
        img, instances = draw_image(rng, size, classes, max_objects)
        file_name = f'{split}_{k:05d}.png'
        cv2.imwrite(osp.join(root, 'images', file_name), img[..., ::-1])
        image_id = len(images) + 1
        images.append(
            dict(id=image_id, file_name=file_name, width=size, height=size))
        for label, mask, poly in instances:
            annotations.append(
                coco_annotation(
                    len(annotations) + 1, image_id, label + 1, mask, poly))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(classes)]
    with open(osp.join(root, f'instances_{split}.json'), 'w') as f:
        json.dump(
            dict(
                images=images, annotations=annotations, categories=categories),
            f)


def _write_sets(out,
                write_split,
                salt,
                img_size=128,
                num_train=200,
                num_val=40,
                max_objects=4,
                seed=0):
    """OUT/upstream and OUT/downstream, each with a train and a val split
    written by ``write_split``; returns their paths. ``salt`` keeps the
    random streams of the instance and the semantic sets apart."""
    roots = {}
    sets = (('upstream', UPSTREAM), ('downstream', DOWNSTREAM))
    for offset, (name, classes) in enumerate(sets):
        rng = np.random.default_rng([seed, offset, *salt])
        root = osp.join(out, name)
        for split, num in (('train', num_train), ('val', num_val)):
            write_split(root, split, classes, num, img_size, max_objects, rng)
        roots[name] = root
    return roots


def make_instance_sets(out, **kwargs):
    """Write OUT/upstream and OUT/downstream (COCO instances); returns their
    paths. kwargs: img_size, num_train, num_val, max_objects, seed."""
    return _write_sets(out, write_coco_split, (), **kwargs)


def write_semseg_split(root, split, classes, num_images, size, max_objects,
                       rng):
    """Images under root/img_dir/<split>, label maps under root/ann_dir."""
    for sub in ('img_dir', 'ann_dir'):
        os.makedirs(osp.join(root, sub, split), exist_ok=True)
    for k in range(num_images):
        img, instances = draw_image(rng, size, classes, max_objects)
        label = np.zeros((size, size), np.uint8)
        for cls, mask, _ in instances:
            label[mask] = cls + 1
        name = f'{split}_{k:05d}.png'
        cv2.imwrite(osp.join(root, 'img_dir', split, name), img[..., ::-1])
        cv2.imwrite(osp.join(root, 'ann_dir', split, name), label)


def make_semseg_sets(out, **kwargs):
    """Write OUT/upstream and OUT/downstream label-map sets; kwargs as
    :func:`make_instance_sets`."""
    return _write_sets(out, write_semseg_split, (1, ), **kwargs)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/demo', help='output folder')
    parser.add_argument(
        '--task', choices=['instance', 'semseg'], default='instance')
    parser.add_argument(
        '--layout',
        choices=['coco', 'ade20k', 'cityscapes'],
        help='write one data set in the layout of the real one instead of '
        'the demo sets (see olor_mm/tools/upstream_layouts.py): '
        '--out data/coco, '
        'data/ade or data/cityscapes is what the upstream configs open')
    parser.add_argument(
        '--classes',
        help='--layout coco: comma-separated class names '
        'instead of COCO\'s 80 (a custom data set)')
    parser.add_argument(
        '--img-size',
        type=int,
        default=None,
        help='square image side (default 128; with '
        '--layout, the layout\'s own shape)')
    parser.add_argument(
        '--num-train',
        type=int,
        default=None,
        help='training images per set (200; --layout: 8)')
    parser.add_argument(
        '--num-val',
        type=int,
        default=None,
        help='validation images per set (40; --layout: 2)')
    parser.add_argument('--max-objects', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.layout:
        out = write_layout(args.layout, args.out, args.num_train or 8,
                           args.num_val or 2, args.img_size, args.seed,
                           args.classes.split(',') if args.classes else None)
        print(f'{args.layout}: {out["root"]}')
        return
    args.img_size = args.img_size or 128
    args.num_train = args.num_train or 200
    args.num_val = args.num_val or 40
    make = dict(instance=make_instance_sets, semseg=make_semseg_sets)
    roots = make[args.task](
        args.out,
        img_size=args.img_size,
        num_train=args.num_train,
        num_val=args.num_val,
        max_objects=args.max_objects,
        seed=args.seed)
    for name, root in roots.items():
        print(f'{name}: {root}')


if __name__ == '__main__':
    main()
