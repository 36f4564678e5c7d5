"""What a training checkpoint of an OLOR run holds, part by part.

    python benchmarks/checkpoint_size.py CKPT [CKPT ...] [--names ...]

For each checkpoint: the bytes of its tensors by part (the weights, the
optimizer's state: momentum or Adam's two moments, theta0 in the
optimizer's param groups, RollbackDriftHook's own start copy of the
measured tensors the rollback does not anchor) and the file size; and the
checkpoint against the same one without the rollback's theta0 and without
the hook's copy. docs/usage.md ("Releasing a model") cites its output for
Mask R-CNN R50 with SGD and AdamW, from checkpoints of ``python -m
olor_mm.tools.smoke_train configs/mmdet/mask-rcnn_r50_fpn_olor_1x_coco.py``
(the tensors do not depend on the image size or the number of iterations).
"""
import argparse
import os
import os.path as osp

import torch

from olor_mm.core.theta0 import saved_theta0
from olor_mm.engine.hooks import DRIFT_KEY
from olor_mm.tools.tables import markdown_table

MIB = 2**20


def tensor_bytes(obj) -> int:
    """Bytes of every tensor in ``obj`` (nested dicts, lists, tuples)."""
    if torch.is_tensor(obj):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def parts(path: str) -> dict:
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    optim = ckpt.get('optimizer', {})
    weights = tensor_bytes(ckpt['state_dict'])
    moments = tensor_bytes(optim.get('state', {}))
    theta0 = tensor_bytes(list(saved_theta0(optim).values()))
    hook = tensor_bytes(ckpt.get(DRIFT_KEY, {}))
    return dict(
        weights=weights,
        moments=moments,
        theta0=theta0,
        hook=hook,
        file=os.path.getsize(path))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoints', nargs='+')
    parser.add_argument('--names', nargs='+')
    args = parser.parse_args(argv)
    names = args.names or [osp.basename(p) for p in args.checkpoints]
    rows = []
    for name, path in zip(names, args.checkpoints):
        p = parts(path)
        base = p['file'] - p['theta0'] - p['hook']
        rows.append(
            (name,
             *(f'{p[k] / MIB:.1f}'
               for k in ('weights', 'moments', 'theta0', 'hook', 'file')),
             f'+{100 * (p["file"] - p["hook"]) / base - 100:.0f} %',
             f'+{100 * p["file"] / base - 100:.0f} %'))
    print(
        markdown_table(rows, ('checkpoint', 'weights MiB', 'optimizer state',
                              'theta0', 'drift hook copy', 'file MiB',
                              'theta0 vs none', 'theta0 + hook vs none'),
                       'lrrrrrrr'))


if __name__ == '__main__':
    main()
