"""Process a fine-tuned checkpoint to be published (OpenMMLab's tool).

``python tools/model_converters/publish_model.py IN_FILE OUT_FILE
[--save-keys meta state_dict]`` keeps only ``--save-keys`` of a checkpoint
(the weights and their meta data by default), so the optimizer state, with
OLOR's theta0 inside it (a copy of the pretrained weights: about a
third more than an AdamW checkpoint without rollback, half more with
SGD), the message hub and the schedulers'
state are dropped; it loads the checkpoint with olor-mm's weights-only
loader (MMDetection's own tool fails on MMEngine's checkpoints from torch
2.6 on), prints the sizes before and after, and writes
``OUT_FILE_<date>-<sha256[:8]>.pth`` as OpenMMLab names published models.
The result loads with ``mmdet.apis.init_detector`` /
``mmseg.apis.init_model``, or as ``load_from`` of a config.
"""
import argparse
import datetime
import hashlib
import os
import os.path as osp

import torch

from olor_mm.compat import load_from_local_safe


def publish(in_file: str, out_file: str, save_keys=('meta', 'state_dict')):
    """Write the published checkpoint; returns its path."""
    checkpoint = load_from_local_safe(in_file, map_location='cpu')
    missing = [k for k in save_keys if k not in checkpoint]
    if missing:
        raise SystemExit(f'{in_file} has no {missing}; it holds '
                         f'{sorted(checkpoint)}.')
    for key in sorted(checkpoint):
        if key not in save_keys:
            print(f'Key `{key}` is removed (not in --save-keys).')
    torch.save({k: checkpoint[k] for k in save_keys}, out_file)
    with open(out_file, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    stem = out_file[:-4] if out_file.endswith('.pth') else out_file
    date = datetime.datetime.now().strftime('%Y%m%d')
    final = f'{stem}_{date}-{sha[:8]}.pth'
    os.replace(out_file, final)
    before, after = osp.getsize(in_file), osp.getsize(final)
    print(f'{in_file}: {before / 2**20:.1f} MiB -> {final}: '
          f'{after / 2**20:.1f} MiB ({100 * after / before:.0f} %)')
    return final


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Process a checkpoint to be published')
    parser.add_argument('in_file', help='input checkpoint filename')
    parser.add_argument('out_file', help='output checkpoint filename')
    parser.add_argument(
        '--save-keys',
        nargs='+',
        type=str,
        default=['meta', 'state_dict'],
        help='keys to save in the published checkpoint')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    publish(args.in_file, args.out_file, tuple(args.save_keys))


if __name__ == '__main__':
    main()
