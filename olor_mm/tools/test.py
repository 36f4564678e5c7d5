"""Evaluate a checkpoint, with the command line of MMDetection's test.py.

Works for mmdet and mmseg configs (scope from ``default_scope``); the flags
do what MMDetection's / MMSegmentation's own test.py do with them
(``olor_mm/cli/eval_flags.py``).

Example::

    python tools/test.py CONFIG work_dirs/olor/iter_1000.pth \\
        --work-dir work_dirs/olor/test --show-dir vis
"""
import argparse

import olor_mm  # noqa: F401  (registers the OLOR plug-ins)
from olor_mm.cli import (add_common_arguments, build_runner, enable_show,
                         enable_tta, load_config, parse_with_local_rank,
                         set_out)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        type=str,
        help='mmdet configs: dump predictions to a .pkl file for offline '
        'evaluation; mmseg configs: the folder for the predicted label maps')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation (the config\'s '
        'tta_model / tta_pipeline)')
    add_common_arguments(
        parser, 'the directory to save the file containing evaluation '
        'metrics')
    return parse_with_local_rank(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_show(cfg, args.show, args.show_dir, args.wait_time)
    if args.tta:
        enable_tta(cfg)
    dump = set_out(cfg, args.out) if args.out is not None else None
    runner = build_runner(cfg)
    if dump is not None:
        runner.test_evaluator.metrics.append(dump)
    return runner.test()


if __name__ == '__main__':
    main()
