"""Print OLOR's layer table of a config before training.

``python -m olor_mm.tools.print_layers CONFIG [--cfg-options ...]``
(``tools/analysis_tools/print_layers.py`` in a checkout; CONFIG a file or
an installed package's, ``mmdet::...``) builds the config's model only (no
weights are loaded or downloaded, no data, no optimizer) and prints what
``LayerwiseRollbackConstructor`` logs when training starts: where each
pretrained prefix's numbering comes from, then one row per layer with
``lam_i`` (Eq. 8/9), its trainable tensors and parameters, its first and
last parameter and the source of its numbering. A warning says when a
numbering is coarser than the model's blocks.

Example::

    python -m olor_mm.tools.print_layers \\
        mmdet::yolo/yolov3_d53_8xb8-amp-ms-608-273e_coco.py \\
        --cfg-options optim_wrapper.constructor=LayerwiseRollbackConstructor

An upstream ``AmpOptimWrapper`` config is read in float32 on a machine
without GPU (a line says so); a config error is one line.
"""
import argparse
import logging
import sys
import warnings

import olor_mm  # noqa: F401  (registers the OLOR plug-ins)

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')


class _Echo(logging.Handler):
    """olor-mm's warnings (a coarse numbering) to the console."""

    def emit(self, record):
        print(f'WARNING: {record.getMessage()}')


def layer_report(cfg) -> str:
    """The numbering notes and the layer table of ``cfg``'s model."""
    from olor_mm.layers.layer_table import layer_table
    from olor_mm.tools.config_input import rollback_constructor
    from olor_mm.tools.pretrained import build_model
    wrapper = cfg.get('optim_wrapper') or {}
    if wrapper.get('constructor') != 'LayerwiseRollbackConstructor':
        raise SystemExit(
            f'{cfg.filename}: optim_wrapper.constructor is '
            f'{wrapper.get("constructor")!r}, not '
            "'LayerwiseRollbackConstructor': nothing is numbered for OLOR.")
    constructor = rollback_constructor(cfg)  # the keys, before the model
    model = build_model(cfg)
    handler = _Echo(level=logging.WARNING)
    logging.getLogger('olor_mm').addHandler(handler)
    try:
        _, lams = constructor.number_pretrained(model)
    finally:
        logging.getLogger('olor_mm').removeHandler(handler)
    numbering = constructor.numbering
    notes = [f'OLOR layers of {note}' for note in numbering.notes]
    return '\n'.join(notes + [layer_table(model, numbering, lams)])


def parse_args(argv=None):
    from olor_mm.cli import CfgOptions
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptions)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from mmengine.logging import MMLogger

    from olor_mm.tools.config_input import (for_this_machine, load,
                                            one_line_errors)
    args = parse_args(argv)
    with one_line_errors('print_layers'):
        cfg = load(args.config, args.cfg_options)
        note = for_this_machine(cfg)
        if note:
            print(note)
        # the notes come back in the report; MMEngine's INFO lines stay
        # quiet meanwhile
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            print(layer_report(cfg))
        finally:
            logger.setLevel(level)
    return 0


if __name__ == '__main__':
    sys.exit(main())
