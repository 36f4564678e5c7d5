"""Every ``paramwise_cfg`` key ``LayerwiseRollbackConstructor`` reads, with
its default, and the checks that refuse a misspelt or misplaced one before
any model is built (MMEngine's own constructor ignores unknown keys, so a
misspelt key would silently train with the default)."""
import difflib

from ..core.importance import IMPORTANCES, check_importance_norm
from .fisher_data import FISHER_DEFAULTS, check_fisher_cfg

#: the anchored methods ``paramwise_cfg.method`` chooses from
METHODS = ('olor', 'l2sp', 'ewc')

#: keys of the layer numbering and Eq. 8/9, with their defaults (the
#: reference code's configuration)
OLOR_DEFAULTS = dict(
    rollback_max=0.01,
    rollback_min=0.0,
    rollback_power=1.0,
    pretrained_prefixes=('backbone', ),
    layer_unit='block',
    layer_patterns=None,
    exclude_prefixes=None,
)

#: keys of each method's anchor (the method's defaults where it has any)
METHOD_DEFAULTS = dict(
    # importance='fisher': the importance-weighted rollback
    # (olor_mm.core.importance), w from the upstream Fisher of the fisher_*
    # keys (EWC's, but for fisher_normalize: w is normalised per layer)
    olor=dict(
        scale_with_lr=True,
        anchor_dtype=None,
        importance=None,
        importance_norm='mean',
        **{
            k: v
            for k, v in FISHER_DEFAULTS.items() if k != 'fisher_normalize'
        }),
    l2sp=dict(alpha=0.1, beta=0.01, anchor_dtype=None),
    ewc=dict(alpha=1.0, beta=0.0, anchor_dtype=None, **FISHER_DEFAULTS),
)

#: keys of how the optimizer is built (merged groups, the kernel) and of
#: layer-wise learning-rate decay (olor_mm.core.lr_decay)
BUILD_DEFAULTS = dict(
    merge_groups=True,
    optimizer_impl='auto',
    decay_rate=None,
    decay_type='layer_wise',
    num_layers=None)

#: paramwise_cfg keys of MMEngine's DefaultOptimWrapperConstructor
UPSTREAM_KEYS = ('custom_keys', 'bias_lr_mult', 'bias_decay_mult',
                 'norm_decay_mult', 'flat_decay_mult', 'dwconv_decay_mult',
                 'dcn_offset_lr_mult', 'bypass_duplicate')

#: param-group keys the constructor sets itself from the layer numbering: a
#: ``custom_keys`` entry that sets them would be overwritten (MMEngine copies
#: every other option of an entry into the group, and so does this one)
OWNED_GROUP_KEYS = ('rollback', 'layer_id')


def method_keys() -> list:
    """Every key of any method's anchor."""
    return list(dict.fromkeys(k for d in METHOD_DEFAULTS.values() for k in d))


def known_keys() -> list:
    """Every key the constructor reads."""
    return (['method'] + list(OLOR_DEFAULTS) + method_keys() +
            list(BUILD_DEFAULTS) + list(UPSTREAM_KEYS))


def check_unknown_keys(paramwise_cfg: dict) -> None:
    """Refuse a key that is neither olor-mm's nor MMEngine's (a
    misspelling), naming the nearest key."""
    known = known_keys()
    check_custom_keys(paramwise_cfg.get('custom_keys'))
    reserved = set(paramwise_cfg) & set(OWNED_GROUP_KEYS)
    if reserved:
        raise ValueError(
            f'paramwise_cfg has {sorted(reserved)}: those are group keys '
            'this constructor writes; use rollback_max / rollback_min / '
            'rollback_power instead.')
    unknown = [k for k in paramwise_cfg if k not in known]
    if unknown:
        hints = {
            k: difflib.get_close_matches(k, known, n=1, cutoff=0.5)
            for k in unknown
        }
        raise ValueError(
            'paramwise_cfg has unknown keys ' +
            ', '.join(f'{k!r}' + (f' (did you mean {h[0]!r}?)' if h else '')
                      for k, h in hints.items()) +
            f' for LayerwiseRollbackConstructor; it reads {known}.')


def check_method_keys(method, paramwise_cfg: dict) -> None:
    """``method`` is one of :data:`METHODS`, and no key of another
    method's anchor is set (``alpha`` under OLOR would do nothing).
    OLOR's ``rollback_*`` keys may stay under L2-SP and EWC (configs that
    inherit the OLOR block switch ``method`` alone): they are unused."""
    if method not in METHODS:
        hint = difflib.get_close_matches(str(method), METHODS, n=1)
        raise ValueError(
            f'paramwise_cfg.method={method!r} is unknown' +
            (f' (did you mean {hint[0]!r}?)' if hint else '') +
            f'; use one of {METHODS}: OLOR\'s rollback, the L2-SP or the '
            'EWC penalty toward the pretrained weights.')
    mine = METHOD_DEFAULTS[method]
    foreign = [
        k for k in method_keys() if k in paramwise_cfg and k not in mine
        and not (k == 'scale_with_lr' and method != 'olor')
    ]
    if foreign:
        owners = {
            k: [m for m, d in METHOD_DEFAULTS.items() if k in d]
            for k in foreign
        }
        raise ValueError(
            'paramwise_cfg ' + ', '.join(f'{k} is a key of method={owners[k]}'
                                         for k in foreign) +
            f", not of method={method!r}: set paramwise_cfg.method to the "
            'method you mean, or remove the key.')


def check_importance_keys(cfg: dict, given) -> None:
    """OLOR's ``importance`` and the keys it needs: ``importance='fisher'``
    (the importance-weighted rollback) needs the Fisher keys; without it
    they would do nothing, and are refused.

    Args:
        cfg: OLOR's method keys, completed with the defaults.
        given: The ``paramwise_cfg`` keys the config set.
    """
    importance = cfg['importance']
    if importance is not None and importance not in IMPORTANCES:
        raise ValueError(
            f'paramwise_cfg.importance={importance!r} is unknown; use None '
            "(OLOR's rollback, every weight of a layer alike) or one of "
            f'{IMPORTANCES} (each weight pulled back by lam * w, w from the '
            'upstream Fisher information).')
    if importance is None:
        unused = [
            k for k in given if k == 'importance_norm' or k in FISHER_DEFAULTS
        ]
        if unused:
            raise ValueError(
                f'paramwise_cfg sets {unused} but importance=None, so '
                "nothing reads them: set paramwise_cfg.importance='fisher' "
                'for the importance-weighted rollback, or remove them.')
        return
    try:
        check_importance_norm(cfg['importance_norm'])
    except ValueError as e:
        raise ValueError(f'paramwise_cfg.{e}') from None
    check_fisher_cfg(cfg, who="importance='fisher'")


def check_custom_keys(custom_keys) -> None:
    """Refuse ``custom_keys`` options the rollback would overwrite silently
    (``rollback``: lam comes from the layer numbering)."""
    if not isinstance(custom_keys, dict):
        return
    for name, options in custom_keys.items():
        owned = [k for k in (options or {}) if k in OWNED_GROUP_KEYS]
        if owned:
            raise ValueError(
                f'paramwise_cfg.custom_keys[{name!r}] sets {owned}, which '
                'the LayerwiseRollbackConstructor sets itself: lam per '
                'layer comes from rollback_max / rollback_min / '
                'rollback_power over the layer numbering. To keep a module '
                'out of the rollback, leave it out of pretrained_prefixes '
                'or name it in exclude_prefixes; layer_patterns renumber '
                'layers.')


def check_wrapper_keys(optim_wrapper_cfg: dict) -> None:
    """Refuse olor-mm keys at the ``optim_wrapper`` level (once the
    deprecated ones were forwarded) and near-misses of ``paramwise_cfg``
    (``paramwise=``): the wrapper would fail on them with an
    unexpected-keyword error that names neither the key nor the fix."""
    olor = ['method'] + list(OLOR_DEFAULTS) + list(BUILD_DEFAULTS)
    for key in optim_wrapper_cfg:
        if key in olor:
            raise ValueError(
                f'optim_wrapper.{key} is a key of paramwise_cfg: write '
                f'optim_wrapper.paramwise_cfg.{key} (in a config '
                f'optim_wrapper=dict(paramwise_cfg=dict({key}=...)), or '
                f'--cfg-options optim_wrapper.paramwise_cfg.{key}=...).')
        if key != 'paramwise_cfg' and difflib.get_close_matches(
                key, ['paramwise_cfg'], n=1, cutoff=0.7):
            raise ValueError(
                f'optim_wrapper.{key} is not a key of the optimizer wrapper: '
                'did you mean optim_wrapper.paramwise_cfg?')


#: ``paramwise_cfg`` keys only olor-mm's constructor reads (an upstream
#: constructor ignores them without a word)
OWN_KEYS = tuple(['method'] + list(OLOR_DEFAULTS) + method_keys() +
                 ['merge_groups', 'optimizer_impl'])

CONSTRUCTOR = 'LayerwiseRollbackConstructor'


def check_constructor(optim_wrapper_cfg) -> None:
    """Refuse olor-mm's keys in the ``paramwise_cfg`` of another
    constructor (MMDetection's ``LearningRateDecayOptimizerConstructor``
    of its ConvNeXt configs, MMEngine's default one): it would build,
    attach nothing and never roll back.

    Raises:
        ValueError: naming the constructor, the keys and the one-line fix.
    """
    if not isinstance(optim_wrapper_cfg, dict):
        return
    paramwise = optim_wrapper_cfg.get('paramwise_cfg') or {}
    mine = [k for k in OWN_KEYS if k in paramwise]
    kind = optim_wrapper_cfg.get('constructor')
    name = getattr(kind, '__name__', kind) or 'DefaultOptimWrapperConstructor'
    if not mine or str(name).split('.')[-1] == CONSTRUCTOR or (isinstance(
            kind, type) and any(c.__name__ == CONSTRUCTOR
                                for c in kind.__mro__)):
        return
    upstream = [
        k for k in ('decay_rate', 'decay_type', 'num_layers') if k in paramwise
    ]
    raise ValueError(
        f'optim_wrapper.paramwise_cfg has olor-mm\'s {mine} but '
        f'optim_wrapper.constructor is {name!r}, which ignores them: nothing '
        'would roll back. Set optim_wrapper.constructor='
        f"'{CONSTRUCTOR}'" +
        (f' (it reads {upstream} as {name} does: layer-wise lr decay over '
         'the same layers)' if upstream else '') +
        ', or remove the OLOR keys for a plain fine-tune.')
