"""Every deprecated spelling of olor-mm's ``optim_wrapper``, in one place.

The current spelling: any wrapper ``type`` (``OptimWrapper``,
``AmpOptimWrapper``, ...), ``constructor='LayerwiseRollbackConstructor'``,
and every olor-mm key in ``paramwise_cfg``, where ``method`` chooses the
anchored method (``'olor'``, ``'l2sp'``, ``'ewc'``). Older configs wrote

- ``type='L2SPOptimWrapper'`` / ``'EWCOptimWrapper'`` (and their ``Amp``
  twins): now ``paramwise_cfg.method='l2sp'`` / ``'ewc'`` with
  ``type='OptimWrapper'`` (``'AmpOLOROptimWrapper'`` for the twins);
- the method's keys at the ``optim_wrapper`` level (``scale_with_lr``,
  ``anchor_dtype``, ``alpha``, ``beta``, ``fisher_*``): now in
  ``paramwise_cfg``.

:func:`translate` rewrites such a config into the current spelling, with
one warning per old spelling naming its replacement; one key written in
both places with two values is an error. Supported for one release.
"""
import logging
from typing import Tuple

from mmengine.logging import print_log
from mmengine.registry import OPTIM_WRAPPERS

#: old wrapper type -> (its type now, paramwise_cfg.method)
DEPRECATED_TYPES = {
    'L2SPOptimWrapper': ('OptimWrapper', 'l2sp'),
    'AmpL2SPOptimWrapper': ('AmpOLOROptimWrapper', 'l2sp'),
    'EWCOptimWrapper': ('OptimWrapper', 'ewc'),
    'AmpEWCOptimWrapper': ('AmpOLOROptimWrapper', 'ewc'),
}

#: the rollback's keys older configs wrote at the ``optim_wrapper`` level
#: (for ``OLOROptimWrapper``, which takes them when built without the
#: constructor)
ROLLBACK_KEYS = ('scale_with_lr', 'anchor_dtype')

#: keys older configs wrote at the ``optim_wrapper`` level; their place is
#: ``paramwise_cfg``
WRAPPER_LEVEL_KEYS = ROLLBACK_KEYS + ('alpha', 'beta', 'fisher_dataloader',
                                      'fisher_batches', 'fisher_model',
                                      'fisher_checkpoint', 'fisher_normalize')


def warn(old: str, new: str) -> None:
    """One deprecation warning: what was written, what to write."""
    print_log(
        f'{old} is deprecated: write {new} (the constructor configures '
        'the anchored method under any wrapper type); it is forwarded '
        'there.',
        logger='current',
        level=logging.WARNING)


def _same(key: str, a, b) -> bool:
    if key == 'anchor_dtype':
        from ..core.theta0 import parse_anchor_dtype
        return parse_anchor_dtype(a) == parse_anchor_dtype(b)
    return a == b


def translate(optim_wrapper_cfg: dict,
              paramwise_cfg: dict) -> Tuple[dict, dict]:
    """``(optim_wrapper_cfg, paramwise_cfg)`` in the current spelling.

    Raises:
        ValueError: for a key set at the wrapper level and in
            ``paramwise_cfg`` to different values, or a deprecated type
            whose method contradicts ``paramwise_cfg.method``.
    """
    wrapper, paramwise = dict(optim_wrapper_cfg), dict(paramwise_cfg)
    kind = wrapper.get('type')
    if isinstance(kind, str) and kind in DEPRECATED_TYPES:
        now, method = DEPRECATED_TYPES[kind]
        if paramwise.get('method', method) != method:
            raise ValueError(
                f"optim_wrapper.type='{kind}' and paramwise_cfg.method="
                f"{paramwise['method']!r} ask for two methods: write "
                f"type='{now}' and paramwise_cfg.method='{method}' (or the "
                'method you want).')
        warn(
            f"optim_wrapper.type='{kind}'",
            f"type='{now}' with optim_wrapper.paramwise_cfg.method="
            f"'{method}'")
        wrapper['type'] = now
        paramwise['method'] = method
    for key in WRAPPER_LEVEL_KEYS:
        if key not in wrapper:
            continue
        value = wrapper.pop(key)
        if key in paramwise and not _same(key, value, paramwise[key]):
            raise ValueError(
                f'optim_wrapper.{key}={value!r} and paramwise_cfg.{key}='
                f'{paramwise[key]!r} differ; set it in one place: '
                f'optim_wrapper.paramwise_cfg.{key}.')
        warn(f'optim_wrapper.{key}={value!r}',
             f'optim_wrapper.paramwise_cfg.{key}')
        paramwise[key] = value
    return wrapper, paramwise


def _refuse_without_constructor(name: str):
    """What ``OPTIM_WRAPPERS`` builds for a former wrapper type when the
    config has no ``LayerwiseRollbackConstructor`` (which would have
    rewritten it): an error naming what to write."""
    now, method = DEPRECATED_TYPES[name]

    def build(**kwargs):
        raise ValueError(
            f"optim_wrapper.type='{name}' is deprecated, and needs "
            "constructor='LayerwiseRollbackConstructor' (it tells which "
            f"weights are pretrained): write type='{now}', constructor="
            "'LayerwiseRollbackConstructor', paramwise_cfg=dict("
            f"method='{method}', pretrained_prefixes=(...), ...).")

    build.__name__ = name
    return build


def register_deprecated_types() -> None:
    """Register the former wrapper types under their names (refusals with
    the fix, see :func:`_refuse_without_constructor`)."""
    for name in DEPRECATED_TYPES:
        if OPTIM_WRAPPERS.get(name) is None:
            OPTIM_WRAPPERS.register_module(
                name=name, module=_refuse_without_constructor(name))
