"""Train a detector or segmentor with OLOR rollback.

The command line of MMDetection's / MMSegmentation's ``tools/train.py``; the
scope (mmdet or mmseg) comes from the config's ``default_scope``. Importing
``olor_mm`` registers ``LayerwiseRollbackConstructor`` (and the wrapper
aliases ``OLOROptimWrapper``, ``AmpOLOROptimWrapper``) and applies the
checkpoint-loading fix.

Example::

    python tools/train.py configs/mmdet/mask-rcnn_r50_fpn_olor_1x_coco.py \\
        --work-dir work_dirs/olor --amp \\
        --cfg-options optim_wrapper.paramwise_cfg.rollback_max=0.02
"""
import argparse
import sys

import olor_mm  # noqa: F401  (registers the OLOR plug-ins)
from olor_mm.cli import (add_common_arguments, build_runner, enable_amp,
                         load_config, parse_with_local_rank, resume_options)
from olor_mm.engine.config_keys import check_constructor


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a detector / segmentor (OLOR-aware)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (bfloat16 on CPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    add_common_arguments(parser, 'the dir to save logs and models')
    return parse_with_local_rank(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args)
        # OLOR keys under another constructor would train without rollback
        check_constructor(cfg.get('optim_wrapper'))
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'tools/train.py: error: {err}')

    if args.amp:
        enable_amp(cfg)

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and \
                'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your'
                               ' configuration file.')

    # resume: a given checkpoint > the latest one in work_dir > none yet:
    # a new fine-tune from load_from
    try:
        note = resume_options(cfg, args.resume)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'tools/train.py: error: {err}')
    if note:
        print(note, flush=True)

    build_runner(cfg).train()


if __name__ == '__main__':
    main()
