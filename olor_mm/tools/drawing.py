"""Drawing the synthetic data: shapes on textured backgrounds and their
COCO annotations, shared by the demo sets (:mod:`.demo_data`), the
upstream layouts (:mod:`.upstream_layouts`) and the digit sets
(:mod:`.digit_data`)."""
import math

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
