"""LayerwiseRollbackConstructor: MMEngine's groups + OLOR's lam_i, attached.

The constructor builds the param groups exactly as MMEngine's
``DefaultOptimWrapperConstructor`` does, tags each with OLOR's layer-wise
coefficient (:mod:`olor_mm.core.param_groups`, Eq. 8/9), and attaches the
rollback to the torch optimizer it builds (:func:`olor_mm.attach_rollback`)
before wrapping it. So whatever ``optim_wrapper.type`` is -- ``OptimWrapper``
(the documented spelling), ``AmpOptimWrapper`` (what upstream
``tools/train.py --amp`` writes), or the aliases ``OLOROptimWrapper`` /
``AmpOLOROptimWrapper`` -- training rolls back the same way, configured by
``paramwise_cfg`` alone.
"""
import contextlib
import difflib
import inspect
import logging
from typing import List, Optional

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.optim import AmpOptimWrapper, DefaultOptimWrapperConstructor
from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
from mmengine.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                               OPTIMIZERS)

from ..core.attach import RollbackHandle
from ..core.kernels import IMPLS, choose_impl
from ..core.lr_decay import check_decay, lr_decay_mults
from ..core.param_groups import layer_lams, merge_param_groups
from ..core.rollback import as_real
from ..core.theta0 import find_anchor, parse_anchor_dtype
from ..layers.layer_table import layer_table
from ..layers.numbering import (check_prefixes, number_pretrained,
                                shared_names, stage_groups, tensor_layers)
from .optim_wrappers import guard_training_start, warn_deprecated_wrapper_key

#: paramwise_cfg keys of the layer numbering and Eq. 8/9, with their
#: defaults (the reference code's configuration).
OLOR_DEFAULTS = dict(
    rollback_max=0.01,
    rollback_min=0.0,
    rollback_power=1.0,
    pretrained_prefixes=('backbone', ),
    layer_unit='block',
    layer_patterns=None,
    exclude_prefixes=None,
)

#: keys of the attached rollback, in paramwise_cfg (at the optim_wrapper
#: level they are deprecated and forwarded with a warning).
ROLLBACK_DEFAULTS = dict(scale_with_lr=True, anchor_dtype=None)

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


def _check_unknown_keys(paramwise_cfg: dict) -> None:
    """Refuse a key that is neither ours nor MMEngine's (a misspelling).

    MMEngine's constructor ignores unknown keys; here a misspelt OLOR key
    (``rollback_maximum``) would silently train with the default.
    """
    known = list(OLOR_DEFAULTS) + list(ROLLBACK_DEFAULTS) + list(
        BUILD_DEFAULTS) + list(UPSTREAM_KEYS)
    _check_custom_keys(paramwise_cfg.get('custom_keys'))
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


class _ParamwiseAtDebug(logging.Filter):
    """Turns MMEngine's one line per parameter and option
    (``paramwise_options -- backbone.conv1.weight:lr_mult=...``, hundreds
    for a ResNet) into DEBUG records, keeping their text."""

    def __init__(self):
        super().__init__()
        self.lines: List[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith('paramwise_options -- '):
            self.lines.append(message[len('paramwise_options -- '):])
            record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
        return True


@contextlib.contextmanager
def _paramwise_lines_at_debug():
    """The paramwise_options lines MMEngine logs meanwhile, at DEBUG."""
    logger = MMLogger.get_current_instance()
    keep = _ParamwiseAtDebug()
    logger.addFilter(keep)
    try:
        yield keep.lines
    finally:
        logger.removeFilter(keep)


def _check_amp_device(wrapper_cls: type) -> None:
    """MMEngine's AmpOptimWrapper needs an accelerator: say so before
    anything is built (MMEngine's own refusal, on the same condition, comes
    after the OLOR table), with the way to mixed precision on the CPU."""
    accelerator = any(
        getattr(amp, f'is_{kind}_available', lambda: False)()
        for kind in ('cuda', 'npu', 'mlu', 'musa'))
    if wrapper_cls is AmpOptimWrapper and not accelerator:
        raise RuntimeError(
            "optim_wrapper.type='AmpOptimWrapper' (what MMDetection's and "
            "MMSegmentation's tools/train.py --amp write) needs a GPU, and "
            "this machine has none. On the CPU set optim_wrapper.type="
            "'AmpOLOROptimWrapper' (mixed precision in bfloat16; what "
            "olor-mm's tools/train.py --amp makes of an OLOR config there), "
            'or train without --amp.')


#: param-group keys the constructor sets itself from the layer numbering: a
#: ``custom_keys`` entry that sets them would be overwritten (MMEngine copies
#: every other option of an entry into the group, and so does this one)
OWNED_GROUP_KEYS = ('rollback', 'layer_id')


def _check_custom_keys(custom_keys) -> None:
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


def _kernel_notice(impl: str, requested: str):
    """A load post-hook saying when a resumed state brings another kernel.

    torch restores every param group's values, ``fused`` / ``foreach``
    among them, so the checkpoint's kernel runs after a resume whatever
    ``optimizer_impl`` says now; both agree up to float rounding.
    """

    def notice(optimizer) -> None:
        loaded = 'fused' if any(g.get('fused') for g in
                                optimizer.param_groups) else 'foreach' if any(
                                    g.get('foreach')
                                    for g in optimizer.param_groups) else \
            'torch_default'
        built = impl.split()[0]
        if loaded != built:
            print_log(
                f'resume: the checkpoint\'s kernel ({loaded}) runs, not the '
                f'one this config chose ({built}, optimizer_impl='
                f'{requested!r}), as torch restores every param group\'s '
                'values; they agree up to float rounding. To change it, '
                'start a new fine-tune from the checkpoint with '
                'load_from=<ckpt> and resume=False.',
                logger='current',
                level=logging.WARNING)

    return notice


def _check_wrapper_keys(optim_wrapper_cfg: dict) -> None:
    """Refuse OLOR keys at the ``optim_wrapper`` level and near-misses of
    ``paramwise_cfg`` (``paramwise=``): the wrapper would fail on them with
    an unexpected-keyword error that names neither the key nor the fix.
    ``scale_with_lr`` and ``anchor_dtype`` are forwarded from there
    (deprecated; :meth:`LayerwiseRollbackConstructor._take_wrapper_keys`)."""
    olor = list(OLOR_DEFAULTS) + list(BUILD_DEFAULTS)
    for key in optim_wrapper_cfg:
        if key in olor:
            raise ValueError(
                f'optim_wrapper.{key} is an OLOR key of paramwise_cfg: '
                f'write optim_wrapper.paramwise_cfg.{key} (in a config '
                f'optim_wrapper=dict(paramwise_cfg=dict({key}=...)), or '
                f'--cfg-options optim_wrapper.paramwise_cfg.{key}=...).')
        if key != 'paramwise_cfg' and difflib.get_close_matches(
                key, ['paramwise_cfg'], n=1, cutoff=0.7):
            raise ValueError(
                f'optim_wrapper.{key} is not a key of the optimizer wrapper: '
                'did you mean optim_wrapper.paramwise_cfg?')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerwiseRollbackConstructor(DefaultOptimWrapperConstructor):
    """Parameter groups with a layer-wise rollback (OLOR Eq. 8/9), attached.

    Builds the groups as :class:`DefaultOptimWrapperConstructor` does
    (``custom_keys``, ``norm_decay_mult``, ``bias_decay_mult``,
    ``bypass_duplicate`` ... all keep working), adds two keys to every group,
    then merges the groups whose options are all equal and builds the
    optimizer with the fastest kernel torch has for it:

    - ``layer_id``: depth ``i`` of the parameter's layer among the pretrained
      layers ``0..n``, or None for a parameter that is not pretrained.
    - ``rollback``: ``lam_i = iota2 + (1 - i/n) ** gamma * (iota1 - iota2)``
      (``lam = iota1`` for a single layer), 0.0 for non-pretrained ones.

    Then it attaches OLOR's rollback to the optimizer
    (:func:`olor_mm.attach_rollback`): after every real update the groups
    with ``rollback > 0`` are pulled toward ``theta0``, under any wrapper
    type. ``theta0`` is taken at training start (after the weights load).

    Extra ``paramwise_cfg`` keys:

    - ``rollback_max`` (float): iota1, lam of the shallowest layer. 0.01.
    - ``rollback_min`` (float): iota2, lam of the deepest layer. 0.0.
    - ``rollback_power`` (float): gamma, the decay with depth. 1.0.
    - ``pretrained_prefixes`` (tuple[str]): modules (or parameters) whose
      values are pretrained and roll back; ``('',)`` is the whole model.
      ``('backbone',)``.
    - ``exclude_prefixes`` (tuple[str], optional): modules or parameters
      inside them that do not roll back (e.g. the new classifier when
      ``pretrained_prefixes=('',)``). None.
    - ``layer_unit`` (str): ``'block'``, layers by architecture (stem, then
      each residual / transformer block: :mod:`olor_mm.layers.numbering`); or
      ``'param'``, the reference code's numbering (every tensor a layer).
      ``'block'``.
    - ``layer_patterns`` (list, optional): depth rules (regexes on parameter
      names relative to the prefix, each capturing the integers that order
      it, or ``(regex, suffix)`` pairs) that replace every other source of
      the numbering.
    - ``scale_with_lr`` (bool): ``lam_eff = lam_i * lr_t / lr_0``. True.
    - ``anchor_dtype`` (str, optional): dtype of the stored ``theta0``.
      None (the parameters').
    - ``merge_groups`` (bool): one group per distinct set of options
      instead of one per parameter (torch's fused / foreach kernels batch
      within a group). True.
    - ``optimizer_impl`` (str): ``'auto'`` (fused where torch has it for the
      optimizer and device, else foreach), ``'fused'``, ``'foreach'`` or
      ``'torch_default'``. ``'auto'``.
    - ``decay_rate``, ``decay_type``, ``num_layers``: layer-wise learning
      rate decay, ``lr_mult_i = decay_rate ** (n - i)`` on these layers
      (:mod:`olor_mm.core.lr_decay`). Off.

    ``scale_with_lr`` and ``anchor_dtype`` written at the ``optim_wrapper``
    level (older configs for ``OLOROptimWrapper``) are deprecated: the
    constructor forwards them to the rollback with a warning, whatever the
    wrapper type (an upstream ``--amp`` rewrites it to ``AmpOptimWrapper``).
    A wrapper type that declares ``attaches_rollback = False`` (L2-SP) gets
    the groups only.

    Layers are counted over every parameter of the pretrained modules,
    frozen or not; frozen parameters are not in the optimizer.

    Examples:
        >>> optim_wrapper = dict(
        >>>     type='OptimWrapper',   # any wrapper; --amp may rewrite it
        >>>     # _delete_: replace the base config's optimizer (an SGD's
        >>>     # momentum would otherwise merge into AdamW's arguments)
        >>>     optimizer=dict(
        >>>         _delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05),
        >>>     constructor='LayerwiseRollbackConstructor',
        >>>     paramwise_cfg=dict(
        >>>         rollback_max=0.01, rollback_min=0.0, rollback_power=1.0,
        >>>         scale_with_lr=True, pretrained_prefixes=('backbone',),
        >>>         custom_keys={'backbone': dict(decay_mult=0.)}))
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        reserved = set(paramwise_cfg) & {'rollback', 'layer_id'}
        if reserved:
            raise ValueError(
                f'paramwise_cfg has {sorted(reserved)}: those are group keys '
                'this constructor writes; use rollback_max / rollback_min / '
                'rollback_power instead.')
        _check_unknown_keys(paramwise_cfg)
        self.olor_cfg = {
            k: paramwise_cfg.pop(k, v)
            for k, v in OLOR_DEFAULTS.items()
        }
        self.rollback_cfg = {
            k: paramwise_cfg.pop(k)
            for k in ROLLBACK_DEFAULTS if k in paramwise_cfg
        }
        self.build_cfg = {
            k: paramwise_cfg.pop(k, v)
            for k, v in BUILD_DEFAULTS.items()
        }
        self._check_build_cfg()
        cfg = self.olor_cfg
        # validate everything before any model is seen
        for key in ('rollback_max', 'rollback_min', 'rollback_power'):
            cfg[key] = as_real(cfg[key])  # numpy scalars, 0-d tensors
        layer_lams(1, cfg['rollback_max'], cfg['rollback_min'],
                   cfg['rollback_power'])
        cfg['pretrained_prefixes'] = check_prefixes(cfg['pretrained_prefixes'])
        optim_wrapper_cfg = dict(optim_wrapper_cfg)
        _check_wrapper_keys(optim_wrapper_cfg)
        self._take_wrapper_keys(optim_wrapper_cfg)
        _check_amp_device(self.wrapper_cls)
        if 'anchor_dtype' in self.rollback_cfg:  # before any table is logged
            parse_anchor_dtype(self.rollback_cfg['anchor_dtype'])
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        # Always take the per-parameter path of the parent's ``__call__``.
        self.paramwise_cfg.setdefault('bypass_duplicate', False)

    def _check_build_cfg(self) -> None:
        cfg = self.build_cfg
        if not isinstance(cfg['merge_groups'], bool):
            raise ValueError(
                f'paramwise_cfg.merge_groups={cfg["merge_groups"]!r} must be '
                'True (one group per set of equal options, the fast layout) '
                'or False (one group per parameter, MMEngine\'s layout).')
        if cfg['optimizer_impl'] not in IMPLS:
            raise ValueError(
                f'paramwise_cfg.optimizer_impl={cfg["optimizer_impl"]!r} is '
                f'unknown; use one of {IMPLS}.')
        if cfg['decay_rate'] is not None or cfg['decay_type'] != 'layer_wise':
            check_decay(
                1.0 if cfg['decay_rate'] is None else cfg['decay_rate'],
                cfg['decay_type'])
        if cfg['num_layers'] is not None and (
                isinstance(cfg['num_layers'], bool)
                or not isinstance(cfg['num_layers'], int)
                or cfg['num_layers'] < 0):
            raise ValueError(
                f'paramwise_cfg.num_layers={cfg["num_layers"]!r} must be a '
                'whole number >= 0 (the backbone\'s layers, as '
                'LearningRateDecayOptimizerConstructor counts them), or '
                'None: the lr decay follows OLOR\'s own numbering anyway.')

    def _wrapper_class(self, optim_wrapper_cfg: dict) -> type:
        kind = optim_wrapper_cfg.get('type', 'OptimWrapper')
        cls = OPTIM_WRAPPERS.get(kind) if isinstance(kind, str) else kind
        if cls is None:
            raise KeyError(
                f'optim_wrapper.type={kind!r} is not registered in '
                "MMEngine's OPTIM_WRAPPERS (is its package imported?)")
        return cls

    def _take_wrapper_keys(self, optim_wrapper_cfg: dict) -> None:
        """Forward the deprecated wrapper-level ``scale_with_lr`` /
        ``anchor_dtype`` to the rollback, with a warning.

        Wrapper types that attach the rollback (every one but L2-SP's) get
        them from the constructor; a key set both at the wrapper level and
        in ``paramwise_cfg`` to different values is an error. L2-SP's
        wrapper takes ``anchor_dtype`` itself (its own theta0).
        """
        self.wrapper_cls = self._wrapper_class(optim_wrapper_cfg)
        self.attaches = getattr(self.wrapper_cls, 'attaches_rollback', True)
        for key in ROLLBACK_DEFAULTS:
            if key not in optim_wrapper_cfg:
                continue
            if not self.attaches:
                if key in self.rollback_cfg:
                    raise ValueError(
                        f'{key} is set both at the optim_wrapper level and '
                        'in paramwise_cfg; set it in one place.')
                if key == 'scale_with_lr':  # a rollback's key: none here
                    value = optim_wrapper_cfg.pop(key)
                    print_log(
                        f'optim_wrapper.scale_with_lr={value!r} is not used: '
                        f'{self.wrapper_cls.__name__} does not roll back.',
                        logger='current')
                continue
            value = optim_wrapper_cfg.pop(key)
            warn_deprecated_wrapper_key(key, value)
            if key in self.rollback_cfg and self._differ(
                    key, value, self.rollback_cfg[key]):
                raise ValueError(
                    f'optim_wrapper.{key}={value!r} and paramwise_cfg.{key}='
                    f'{self.rollback_cfg[key]!r} differ; set it in one '
                    'place.')
            self.rollback_cfg[key] = value
        if not self.attaches and 'anchor_dtype' in self.rollback_cfg:
            optim_wrapper_cfg['anchor_dtype'] = self.rollback_cfg.pop(
                'anchor_dtype')

    @staticmethod
    def _differ(key, a, b) -> bool:
        if key == 'anchor_dtype':
            return parse_anchor_dtype(a) != parse_anchor_dtype(b)
        return a != b

    # ------------------------------------------------------------- build
    def __call__(self, model: nn.Module):
        """Groups, optimizer, rollback attached, then the wrapper."""
        if hasattr(model, 'module'):
            model = model.module
        self._model = model
        self._layer_of, self._layer_lams = self.number_pretrained(model)
        self._tensor_layer = tensor_layers(model, self._layer_of)
        optimizer = self.build_optimizer(model)
        # saved with theta0: a resume with another numbering or group
        # layout is refused, edited hyper-parameters are named
        setup = dict({k: self.olor_cfg[k]
                      for k in OLOR_DEFAULTS},
                     merge_groups=self.build_cfg['merge_groups'])
        if self.attaches:
            rollback = dict(ROLLBACK_DEFAULTS, **self.rollback_cfg)
            handle = RollbackHandle(
                optimizer, warn_if_inert=False, setup=setup, **rollback)
            if not handle.trainable:
                self._warn_nothing_rolls_back(model)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        optim_wrapper = OPTIM_WRAPPERS.build(
            wrapper_cfg, default_args=dict(optimizer=optimizer))
        if self.attaches:
            guard_training_start(optim_wrapper)
        else:  # the wrapper's own anchor (L2-SP, EWC) checks the same
            anchor = find_anchor(optimizer)
            if anchor is not None and anchor.config is None:
                anchor.config = setup
        return optim_wrapper

    def _warn_nothing_rolls_back(self, model: nn.Module) -> None:
        """Say why nothing rolls back: all frozen, or lam = 0."""
        cfg = self.olor_cfg
        names = dict(model.named_parameters(remove_duplicate=False))
        trainable = [n for n in self._layer_of if names[n].requires_grad]
        if not trainable:
            why = (f'every parameter of pretrained_prefixes='
                   f'{cfg["pretrained_prefixes"]} is frozen '
                   '(requires_grad=False, e.g. frozen_stages covers the '
                   'whole backbone)')
        else:
            why = (f'rollback_max={cfg["rollback_max"]} gives lam = 0 to '
                   'every trainable pretrained layer')
        print_log(
            f'LayerwiseRollbackConstructor: nothing will roll back: {why}.',
            logger='current',
            level=logging.WARNING)

    def build_optimizer(self, model: nn.Module):
        """The torch optimizer over the tagged groups.

        MMEngine's recipe (the optimizer's first argument, ``params`` or
        another name, gets the groups of :meth:`add_params`), then: groups
        with equal options merged (``merge_groups``), the fastest kernel
        torch has for the optimizer and device (``optimizer_impl``), one log
        line saying both, and a load hook that names ``merge_groups`` when a
        checkpoint of the other layout is loaded.
        """
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cls = optimizer_cfg['type']
        if isinstance(optimizer_cls, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(optimizer_cfg['type'])
        first_arg = next(iter(inspect.signature(optimizer_cls).parameters))
        params: List[dict] = []
        self.add_params(params, model)
        if not params:
            raise ValueError(
                f'every parameter of {type(model).__name__} is frozen '
                '(requires_grad=False): nothing to optimise. Unfreeze the '
                'modules to fine-tune (e.g. a smaller frozen_stages).')
        before = len(params)
        if self.build_cfg['merge_groups']:
            params = merge_param_groups(params)
        impl, kwargs = choose_impl(optimizer_cls, params,
                                   self.build_cfg['optimizer_impl'],
                                   optimizer_cfg)
        optimizer_cfg.update(kwargs)
        optimizer_cfg[first_arg] = params
        try:
            optimizer = OPTIMIZERS.build(optimizer_cfg)
        except ValueError as err:
            if 'per-parameter options' not in str(err):
                raise
            raise ValueError(
                f'optim_wrapper.optimizer.type={optimizer_cfg["type"]!r} '
                'takes one param group, and OLOR gives each layer its own '
                '(its lam_i): use an optimizer that takes param groups (SGD, '
                'AdamW, ...).') from err
        optimizer.register_load_state_dict_post_hook(
            _kernel_notice(impl, self.build_cfg['optimizer_impl']))
        print_log(
            f'{optimizer_cls.__name__}: {before} param groups' +
            (f' merged into {len(params)}' if len(params) != before else
             (' (one per parameter: merge_groups=False)'
              if not self.build_cfg['merge_groups'] else '')) +
            f'; kernel: {impl}',
            logger='current')
        return optimizer

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module=None) -> None:
        """Add the parent's groups, then tag each with layer_id/rollback.

        A tensor shared by several modules (tied weights) is listed by
        MMEngine once per module: it keeps one group, the first (its first
        name's options), so that the optimizer updates it once.
        """
        start = len(params)
        if prefix:  # the recursion below the root tags nothing itself
            super().add_params(params, module, prefix, is_dcn_module)
            return
        with _paramwise_lines_at_debug() as lines:
            super().add_params(params, module, prefix, is_dcn_module)
        if lines:
            print_log(
                f'paramwise_cfg set {len(lines)} options of '
                f'{len({line.split(":")[0] for line in lines})} parameters '
                f'(e.g. {lines[0]}); each is listed at log_level=\'DEBUG\'.',
                logger='current')
        seen, kept = set(), []
        for group in params[start:]:
            (param, ) = group['params']
            if id(param) not in seen:
                seen.add(id(param))
                kept.append(group)
        params[start:] = kept
        self._log_shared()
        mults = self._lr_decay_mults()
        for group in params[start:]:
            (param, ) = group['params']
            layer = self._tensor_layer.get(id(param))
            group['layer_id'] = layer
            group['rollback'] = (0.0
                                 if layer is None else self._layer_lams[layer])
            if id(param) in mults:
                group['lr'] = group.get('lr', self.base_lr) * mults[id(param)]
        self._log_table(params[start:])

    def _log_shared(self) -> None:
        shared = shared_names(self._model)
        if shared:
            print_log(
                f'{len(shared)} tensors are shared by several modules (e.g. '
                f'{" = ".join(shared[0])}): each is optimised once, with the '
                'options of its first name, and rolls back if any of its '
                'names is pretrained.',
                logger='current')

    def _lr_decay_mults(self):
        """``{id(tensor): lr multiplier}`` of layer-wise lr decay, or
        empty."""
        cfg = self.build_cfg
        if cfg['decay_rate'] is None:
            return {}
        if self.base_lr is None:
            raise ValueError(
                'paramwise_cfg.decay_rate scales optimizer.lr per layer: '
                'set optimizer.lr in the config.')
        count = len(self._layer_lams)
        if cfg['num_layers'] is not None and cfg['num_layers'] + 2 != count:
            print_log(
                f'paramwise_cfg.num_layers={cfg["num_layers"]}: the lr decay '
                f'follows the rollback\'s numbering, {count} layers (upstream '
                'counts num_layers + 2).',
                logger='current',
                level=logging.WARNING)
        stage_of, stages = {}, 0
        if cfg['decay_type'] == 'stage_wise':
            for k, names in enumerate(
                    stage_groups(self._model, list(self._layer_of)).values()):
                stage_of.update({n: k for n in names})
                stages = k + 1
        by_name = lr_decay_mults(self._layer_of, count, cfg['decay_rate'],
                                 cfg['decay_type'], stage_of, stages)
        return {
            id(p): by_name[n]
            for n, p in self._model.named_parameters(remove_duplicate=False)
            if n in by_name
        }

    def number_pretrained(self, model: nn.Module):
        """Layer id of every pretrained parameter name, and lam per layer.

        See :func:`olor_mm.layers.numbering.number_pretrained`; the source
        of the numbering of each prefix is logged. The numbering stays in
        :attr:`numbering` (a
        :class:`~olor_mm.layers.numbering.LayerNumbering`).
        """
        cfg = self.olor_cfg
        self.numbering = number_pretrained(model, cfg['pretrained_prefixes'],
                                           cfg['layer_unit'],
                                           cfg['layer_patterns'],
                                           cfg['exclude_prefixes'])
        for note in self.numbering.notes:
            print_log(f'OLOR layers of {note}', logger='current')
        lams = layer_lams(self.numbering.count, cfg['rollback_max'],
                          cfg['rollback_min'], cfg['rollback_power'])
        return self.numbering.layer_of, lams

    def _log_table(self, groups: List[dict]) -> None:
        """The table of :func:`olor_mm.layers.layer_table.layer_table`: per
        layer lam_i, trainable tensors and parameters (a frozen layer keeps its
        place with 0 tensors: ``requires_grad=False``, or an lr of 0 as
        ``custom_keys={...: dict(lr_mult=0.)}`` gives), first and last
        name, source."""
        still = {
            id(g['params'][0])
            for g in groups if g.get('lr', self.base_lr) == 0
        }
        print_log(
            'OLOR layer-wise rollback:\n' + layer_table(
                self._model, self.numbering, self._layer_lams, frozen=still),
            logger='current',
            level=logging.INFO)
