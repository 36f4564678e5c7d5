"""Small generated data sets in the exact layouts upstream configs read.

``python tools/make_demo_data.py --layout coco|ade20k|cityscapes --out DIR``
writes the demo's drawn shapes (class ``k`` drawn as one of seven shapes)
with the directory tree, file names, annotation formats and class counts of
the real data sets, so that MMDetection's COCO configs and MMSegmentation's
ADE20K / Cityscapes configs open ``data/coco``, ``data/ade`` and
``data/cityscapes`` made by it unchanged::

    coco        DIR/annotations/instances_{train,val}2017.json
                DIR/{train,val}2017/000000000001.jpg ...
                80 categories with COCO's names and ids (1..90, with gaps)
    ade20k      DIR/ADEChallengeData2016/images/{training,validation}/
                    ADE_{train,val}_00000001.jpg ...
                DIR/ADEChallengeData2016/annotations/{training,validation}/
                    ADE_{train,val}_00000001.png ...
                label 0 = "other" (ignored: reduce_zero_label), 1..150 the
                150 classes
    cityscapes  DIR/leftImg8bit/{train,val}/<city>/
                    <city>_000000_0000NN_leftImg8bit.png
                DIR/gtFine/{train,val}/<city>/
                    <city>_000000_0000NN_gtFine_labelTrainIds.png
                train ids 0..18 (background: 0, road), 255 = void

Everything is a deterministic function of the seed. Nothing here imports
MMDetection or MMSegmentation.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import cv2
import numpy as np

from olor_mm.tools.drawing import (DOWNSTREAM, UPSTREAM, coco_annotation,
                                   draw_image)

#: the seven drawable shapes; class k of a layout is drawn as SHAPES[k % 7]
SHAPES = UPSTREAM + DOWNSTREAM

COCO_CLASSES = ('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus',
                'train', 'truck', 'boat', 'traffic light', 'fire hydrant',
                'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
                'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra',
                'giraffe', 'backpack', 'umbrella', 'handbag', 'tie',
                'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
                'kite', 'baseball bat', 'baseball glove', 'skateboard',
                'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup',
                'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
                'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza',
                'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
                'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
                'keyboard', 'cell phone', 'microwave', 'oven', 'toaster',
                'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
                'teddy bear', 'hair drier', 'toothbrush')
#: COCO's category ids (91 ids, 80 used)
COCO_IDS = tuple(
    i for i in range(1, 91)
    if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
ADE20K_NUM_CLASSES = 150
CITYSCAPES_NUM_CLASSES = 19
CITIES = dict(train=('aachen', 'bochum'), val=('frankfurt', ))

#: image size (height, width) of each layout by default
DEFAULT_SIZES = dict(coco=(240, 320), ade20k=(256, 256), cityscapes=(128, 256))
LAYOUTS = tuple(DEFAULT_SIZES)


def _shapes(classes: Sequence[str]):
    """A class named like a shape is drawn as it; the others cycle."""
    return [
        c if c in SHAPES else SHAPES[k % len(SHAPES)]
        for k, c in enumerate(classes)
    ]


def write_coco(out: str,
               num_train: int,
               num_val: int,
               size,
               seed: int = 0,
               classes: Optional[Sequence[str]] = None,
               max_objects: int = 4) -> str:
    """COCO 2017 layout under ``out``; ``classes`` replaces COCO's 80.

    Custom classes get ids 1..K (what a custom COCO-format data set of
    MMDetection's guide has); COCO's keep their official ids.
    """
    classes = tuple(classes or COCO_CLASSES)
    ids = COCO_IDS if classes == COCO_CLASSES else tuple(
        range(1,
              len(classes) + 1))
    categories = [
        dict(id=i, name=n, supercategory='shape')
        for i, n in zip(ids, classes)
    ]
    os.makedirs(osp.join(out, 'annotations'), exist_ok=True)
    image_id = 0
    splits = (('train', num_train), ('val', num_val))
    for offset, (split, num) in enumerate(splits):
        rng = np.random.default_rng([seed, offset, 2])
        folder = osp.join(out, f'{split}2017')
        os.makedirs(folder, exist_ok=True)
        images, annotations = [], []
        for _ in range(num):
            img, instances = draw_image(rng, size, classes, max_objects,
                                        _shapes(classes))
            image_id += 1
            name = f'{image_id:012d}.jpg'
            cv2.imwrite(osp.join(folder, name), img[..., ::-1])
            h, w = img.shape[:2]
            images.append(
                dict(
                    id=image_id, file_name=name, width=w, height=h, license=1))
            for label, mask, poly in instances:
                annotations.append(
                    coco_annotation(
                        len(annotations) + 1, image_id, ids[label], mask,
                        poly))
        with open(
                osp.join(out, 'annotations', f'instances_{split}2017.json'),
                'w') as f:
            json.dump(
                dict(
                    info=dict(
                        description='olor-mm generated shapes, COCO '
                        'layout',
                        version='1.0'),
                    licenses=[dict(id=1, name='generated')],
                    images=images,
                    annotations=annotations,
                    categories=categories), f)
    return out


def _label_map(shape, instances, background: int, offset: int):
    label = np.full(shape, background, np.uint8)
    for cls, mask, _ in instances:
        label[mask] = cls + offset
    return label


def write_ade20k(out: str,
                 num_train: int,
                 num_val: int,
                 size,
                 seed: int = 0,
                 max_objects: int = 4) -> str:
    """ADEChallengeData2016 under ``out``: 0 = other, 1..150 the classes."""
    root = osp.join(out, 'ADEChallengeData2016')
    names = [str(k) for k in range(ADE20K_NUM_CLASSES)]
    splits = (('training', 'train', num_train), ('validation', 'val', num_val))
    for offset, (split, tag, num) in enumerate(splits):
        rng = np.random.default_rng([seed, offset, 3])
        for sub in ('images', 'annotations'):
            os.makedirs(osp.join(root, sub, split), exist_ok=True)
        for k in range(1, num + 1):
            img, instances = draw_image(rng, size, names, max_objects,
                                        _shapes(names))
            name = f'ADE_{tag}_{k:08d}'
            cv2.imwrite(
                osp.join(root, 'images', split, name + '.jpg'), img[..., ::-1])
            cv2.imwrite(
                osp.join(root, 'annotations', split, name + '.png'),
                _label_map(img.shape[:2], instances, 0, 1))
    return root


def write_cityscapes(out: str,
                     num_train: int,
                     num_val: int,
                     size,
                     seed: int = 0,
                     max_objects: int = 4) -> str:
    """Cityscapes leftImg8bit / gtFine (labelTrainIds) under ``out``.

    The background is train id 0 (road); the shapes take ids 1..18.
    """
    names = [str(k) for k in range(1, CITYSCAPES_NUM_CLASSES)]
    splits = (('train', num_train), ('val', num_val))
    for offset, (split, num) in enumerate(splits):
        rng = np.random.default_rng([seed, offset, 4])
        cities = CITIES[split]
        for k in range(num):
            city = cities[k % len(cities)]
            img, instances = draw_image(rng, size, names, max_objects,
                                        _shapes(names))
            stem = f'{city}_000000_{k:06d}'
            for sub, suffix, data in (('leftImg8bit', '_leftImg8bit.png',
                                       img[..., ::-1]),
                                      ('gtFine', '_gtFine_labelTrainIds.png',
                                       _label_map(img.shape[:2], instances, 0,
                                                  1))):
                folder = osp.join(out, sub, split, city)
                os.makedirs(folder, exist_ok=True)
                cv2.imwrite(osp.join(folder, stem + suffix), data)
    return out


def write_layout(layout: str,
                 out: str,
                 num_train: int = 8,
                 num_val: int = 2,
                 size=None,
                 seed: int = 0,
                 classes: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """Write one layout; returns ``dict(root=..., layout=...)``.

    Raises:
        ValueError: for an unknown layout, or ``classes`` with a layout
            other than ``coco``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f'--layout {layout!r} is unknown; use one of '
                         f'{LAYOUTS}.')
    if classes and layout != 'coco':
        raise ValueError('--classes applies to --layout coco only (ADE20K '
                         'and Cityscapes have fixed classes).')
    size = size or DEFAULT_SIZES[layout]
    if layout == 'coco':
        root = write_coco(out, num_train, num_val, size, seed, classes)
    elif layout == 'ade20k':
        root = write_ade20k(out, num_train, num_val, size, seed)
    else:
        root = write_cityscapes(out, num_train, num_val, size, seed)
    return dict(root=root, layout=layout)
