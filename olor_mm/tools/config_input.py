"""A config as the check tools take it (print_layers, smoke_train,
forgetting): what users have, one clear line when it is wrong.

- a file, or an installed package's config as ``_base_`` names them
  (``mmdet::yolo/yolov3_d53_8xb8-amp-ms-608-273e_coco.py``);
- ``--cfg-options`` merged; an upstream config given only
  ``optim_wrapper.constructor=LayerwiseRollbackConstructor`` gets an empty
  ``paramwise_cfg`` (the defaults);
- an upstream ``AmpOptimWrapper`` on a machine without GPU is checked in
  float32 under ``OptimWrapper``, with a line that says so: the check tools
  check the optimizer set-up and the rollback, which are the same under
  both wrappers (the rollback is on the optimizer), not mixed precision;
- a config error (an unknown or misspelt key, a missing file, a value out
  of range) is one line: ``<tool>: error: <what and the fix>``
  (``OLOR_MM_TRACEBACK=1`` shows the traceback).
"""
import contextlib
import os
from typing import Optional

#: what a wrong config raises while it is read or its model and optimizer
#: set-up are built (MMEngine's parser and registries, olor-mm's checks)
CONFIG_ERRORS = (ValueError, KeyError, TypeError, FileNotFoundError,
                 ImportError, NotImplementedError, SyntaxError, AssertionError)


def resolve(path: str) -> str:
    """A config path, ``pkg::path`` (an installed package's config, as in
    ``_base_``) resolved to its file."""
    from olor_mm.cli.common import resolve_config
    return resolve_config(path)


def load(path: str, options: Optional[dict] = None):
    """The config of ``path`` (a file or ``pkg::path``) with ``options``
    (``--cfg-options``) merged."""
    from mmengine.config import Config
    cfg = Config.fromfile(resolve(path))
    if options:
        cfg.merge_from_dict(options)
    from olor_mm.engine.config_keys import check_constructor
    check_constructor(cfg.get('optim_wrapper'))
    ow = cfg.get('optim_wrapper')
    if ow is not None and ow.get('constructor') == \
            'LayerwiseRollbackConstructor' and ow.get('paramwise_cfg') is None:
        ow.paramwise_cfg = {}
    return cfg


def rollback_constructor(cfg):
    """The config's ``LayerwiseRollbackConstructor``, built from its
    ``optim_wrapper``: every OLOR key is checked here, before any model
    (an unknown key names the closest known one)."""
    from olor_mm.engine.constructors import LayerwiseRollbackConstructor
    ow = cfg.optim_wrapper
    ow = ow.to_dict() if hasattr(ow, 'to_dict') else dict(ow)
    paramwise = dict(ow.pop('paramwise_cfg', None) or {})
    ow.pop('constructor', None)
    return LayerwiseRollbackConstructor(ow, paramwise)


def for_this_machine(cfg) -> Optional[str]:
    """Check an ``AmpOptimWrapper`` config in float32 where there is no
    GPU (MMEngine's AmpOptimWrapper needs one); returns the line that says
    so, or None when nothing changed."""
    from olor_mm.engine.constructors import has_accelerator
    ow = cfg.get('optim_wrapper') or {}
    if ow.get('type') != 'AmpOptimWrapper' or has_accelerator():
        return None
    ow.type = 'OptimWrapper'
    for key in ('loss_scale', 'dtype', 'use_fsdp'):
        ow.pop(key, None)
    return ("NOTE optim_wrapper.type='AmpOptimWrapper' needs a GPU, and this "
            "machine has none: checked in float32 under 'OptimWrapper' "
            '(the layers, lam and rollback are the same; mixed precision is '
            'not checked here)')


def error_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a KeyError's without quotes)."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else err
    text = ' '.join(str(text).split()) or type(err).__name__
    return text


@contextlib.contextmanager
def one_line_errors(tool: str):
    """Turn a config error into ``SystemExit('<tool>: error: ...')``; with
    ``OLOR_MM_TRACEBACK=1`` in the environment the error keeps its
    traceback (to debug the tool rather than the config)."""
    try:
        yield
    except CONFIG_ERRORS as err:
        if os.environ.get('OLOR_MM_TRACEBACK') == '1':
            raise
        raise SystemExit(f'{tool}: error: {error_line(err)}') from None
