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
configs open unchanged (see ``tools/upstream_layouts.py``).

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
import math
import os
import os.path as osp

import cv2
import numpy as np
from pycocotools import mask as mask_utils

UPSTREAM = ('circle', 'square', 'triangle')
DOWNSTREAM = ('star', 'cross', 'ring', 'arrow')


def _regular(n, radius, angle, inner=None):
    """Vertices of a regular n-gon (a star when ``inner`` is given)."""
    pts = []
    for k in range(n * (2 if inner else 1)):
        r = radius if inner is None or k % 2 == 0 else inner
        a = angle + math.pi * k / (n if inner else n / 2)
        pts.append((r * math.cos(a), r * math.sin(a)))
    return np.array(pts)


def _cross(radius, angle):
    """A plus sign of arm half-width radius/3, rotated by ``angle``."""
    w, r = radius / 3, radius
    pts = np.array([(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w),
                    (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)])
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def _arrow(radius, angle):
    """An arrow pointing along ``angle``: a shaft and a triangular head."""
    r, w = radius, radius / 4
    pts = np.array([(-r, -w), (0.1 * r, -w), (0.1 * r, -2.2 * w), (r, 0),
                    (0.1 * r, 2.2 * w), (0.1 * r, w), (-r, w)])
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def shape_polygon(name, radius, angle):
    """Polygon (N x 2, centred on 0) of a shape; None for the ring."""
    if name == 'circle':
        return _regular(32, radius, 0.0)
    if name == 'square':
        return _regular(4, radius, angle)
    if name == 'triangle':
        return _regular(3, radius, angle)
    if name == 'star':
        return _regular(5, radius, angle, inner=radius * 0.45)
    if name == 'cross':
        return _cross(radius, angle)
    if name == 'arrow':
        return _arrow(radius, angle)
    if name == 'ring':
        return None
    raise ValueError(f'unknown shape {name!r}')


def _hw(size):
    """``size`` (square side) or ``(height, width)`` as a pair."""
    return (size, size) if isinstance(size, int) else tuple(size)


def textured_background(rng, size):
    """Sum of random colour gratings plus noise: a texture, not a flat fill."""
    h, w = _hw(size)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    img = np.zeros((h, w, 3), np.float32)
    for _ in range(3):
        fx, fy = rng.uniform(-12, 12, 2)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)
        img += wave[..., None] * rng.uniform(10, 40, 3)
    img += rng.uniform(60, 190, 3) + rng.normal(0, 8, (h, w, 3))
    return img


def draw_image(rng, size, classes, max_objects, shapes=None):
    """One image and its instances: [(class index, binary mask, polygon)].

    ``size`` is the side of a square image or ``(height, width)``; class
    ``k`` is drawn as the shape ``shapes[k]`` (default: its own name).
    """
    shapes = shapes or classes
    h, w = _hw(size)
    img = textured_background(rng, size)
    occupied = np.zeros((h, w), bool)
    instances = []
    for _ in range(rng.integers(1, max_objects + 1)):
        for _try in range(20):
            label = int(rng.integers(len(classes)))
            radius = rng.uniform(0.08, 0.2) * min(h, w)
            cx, cy = rng.uniform(radius + 1, np.array([w, h]) - radius - 1)
            poly = shape_polygon(shapes[label], radius,
                                 rng.uniform(0, 2 * np.pi))
            mask = np.zeros((h, w), np.uint8)
            if poly is None:  # ring: outer minus inner disc
                cv2.circle(mask, (int(cx), int(cy)), int(radius), 1, -1)
                cv2.circle(mask, (int(cx), int(cy)), int(radius * 0.55), 0, -1)
            else:
                poly = poly + (cx, cy)
                cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
            mask = mask.astype(bool)
            grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5)))
            if mask.sum() > 20 and not (occupied & grown.astype(bool)).any():
                break
        else:
            continue
        occupied |= mask
        colour = rng.uniform(0, 255, 3)
        while np.abs(colour - img[mask].mean(0)).sum() < 150:
            colour = rng.uniform(0, 255, 3)
        img[mask] = colour + rng.normal(0, 6, (mask.sum(), 3))
        instances.append((label, mask, poly))
    return np.clip(img, 0, 255).astype(np.uint8), instances


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


def coco_annotation(ann_id, image_id, category_id, mask, poly=None):
    """One COCO instance: bbox from the mask, polygon (or RLE) and area.

    ``poly`` (N x 2) is stored as the segmentation polygon; without it (a
    shape with a hole) the mask is stored as RLE.
    """
    ys, xs = np.nonzero(mask)
    x0, y0 = float(xs.min()), float(ys.min())
    bbox = [x0, y0, float(xs.max()) + 1 - x0, float(ys.max()) + 1 - y0]
    h, w = mask.shape
    if poly is None:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        segmentation = dict(
            size=rle['size'], counts=rle['counts'].decode('ascii'))
    else:
        segmentation = [np.round(poly, 2).ravel().tolist()]
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=category_id,
        bbox=bbox,
        area=float(mask_utils.area(rle)),
        segmentation=segmentation,
        iscrowd=0)


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
        'the demo sets (see tools/upstream_layouts.py): --out data/coco, '
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
        from upstream_layouts import write_layout
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
