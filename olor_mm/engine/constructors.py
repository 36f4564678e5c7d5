"""LayerwiseRollbackConstructor: MMEngine's groups + OLOR's lam_i, anchored.

The constructor builds the param groups exactly as MMEngine's
``DefaultOptimWrapperConstructor`` does, tags each with OLOR's layer-wise
coefficient (:mod:`olor_mm.core.param_groups`, Eq. 8/9) and the depth of
its layer, and attaches the anchored method ``paramwise_cfg.method`` names
(OLOR's rollback by default, or the L2-SP / EWC penalty:
:mod:`.anchors`) to the torch optimizer it builds, before wrapping it. So
whatever ``optim_wrapper.type`` is -- ``OptimWrapper`` (the documented
spelling), ``AmpOptimWrapper`` (what upstream ``tools/train.py --amp``
writes), a FlexibleRunner strategy's wrapper, or the alias
``OLOROptimWrapper`` -- training is anchored the same way, configured by
``paramwise_cfg`` alone.
"""
import contextlib
import inspect
import logging
from typing import List, Optional

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.optim import AmpOptimWrapper, DefaultOptimWrapperConstructor
from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
from mmengine.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                               OPTIMIZERS)

from ..core.kernels import IMPLS, choose_impl
from ..core.lr_decay import check_decay, lr_decay_mults
from ..core.param_groups import layer_lams, merge_param_groups
from ..core.penalty import check_coefficient
from ..core.rollback import as_real
from ..core.theta0 import parse_anchor_dtype
from ..layers.layer_table import layer_table
from ..layers.numbering import (check_prefixes, number_pretrained,
                                shared_names, stage_groups, tensor_layers)
from . import anchors, deprecations
from .config_keys import (BUILD_DEFAULTS, METHOD_DEFAULTS, OLOR_DEFAULTS,
                          check_importance_keys, check_method_keys,
                          check_unknown_keys, check_wrapper_keys)
from .fisher_data import check_fisher_cfg


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


def has_accelerator() -> bool:
    """Whether MMEngine's AmpOptimWrapper finds a device it runs on."""
    return any(
        getattr(amp, f'is_{kind}_available', lambda: False)()
        for kind in ('cuda', 'npu', 'mlu', 'musa'))


def _check_amp_device(wrapper_cls: type) -> None:
    """MMEngine's AmpOptimWrapper needs an accelerator: say so before
    anything is built (MMEngine's own refusal, on the same condition, comes
    after the OLOR table), with the way to mixed precision on the CPU."""
    if wrapper_cls is AmpOptimWrapper and not has_accelerator():
        raise RuntimeError(
            "optim_wrapper.type='AmpOptimWrapper' (the config's, or what "
            "MMDetection's and MMSegmentation's tools/train.py --amp "
            'write) needs a GPU, and this machine has none. On the CPU set '
            "optim_wrapper.type='AmpOLOROptimWrapper' (mixed precision in "
            "bfloat16; what olor-mm's tools/train.py --amp makes of an OLOR "
            "config there) or 'OptimWrapper' (float32), and train without "
            'upstream --amp. To check the set-up only, print_layers and '
            'smoke_train read such a config in float32.')


def _check_engine(kind) -> None:
    """Refuse an engine whose optimizer state never reaches the torch
    optimizer's ``state_dict()``: theta0 would not be saved, and a resume
    would anchor the run to fine-tuned weights."""
    name = kind if isinstance(kind, str) else kind.__name__
    cls = OPTIM_WRAPPERS.get(kind) if isinstance(kind, str) else kind
    names = {name} | {c.__name__ for c in getattr(cls, '__mro__', ())}
    if 'ColossalAIOptimWrapper' in names:
        raise NotImplementedError(
            'olor-mm under ColossalAI (optim_wrapper.type='
            f"'{name}'): its booster saves the optimizer "
            "state through its own checkpoint IO (LowLevelZero's and "
            "Gemini's optimizers keep their own state), never through the "
            "torch optimizer's state_dict(), so theta0 would not be saved "
            'and a resume would anchor the run to fine-tuned weights. Use '
            "FlexibleRunner with strategy DDPStrategy, FSDPStrategy or "
            "DeepSpeedStrategy, or MMEngine's Runner.")


def _check_fsdp(model: nn.Module) -> None:
    """Refuse what FSDP cannot anchor.

    - Without ``use_orig_params`` FSDP replaces the parameters by flat
      ones, so none keeps the name the numbering and
      ``pretrained_prefixes`` go by.
    - Its ``full`` state dict gathers the optimizer state to rank 0, whose
      param groups then carry rank 0's shard of theta0 only (each rank
      keeps theta0 sharded like its parameters).
    """
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp import StateDictType
    except ImportError:  # torch without distributed
        return
    if any(
            isinstance(m, FSDP) and not getattr(m, '_use_orig_params', True)
            for m in model.modules()):
        raise ValueError(
            'the model is wrapped by FSDP without use_orig_params=True, '
            'which replaces its parameters by flat ones (_flat_param): no '
            'parameter keeps its name, so pretrained_prefixes and the layer '
            "numbering find none. Set use_orig_params=True in the FSDP "
            "wrapper's arguments (FlexibleRunner: strategy=dict("
            "type='FSDPStrategy', model_wrapper=dict(use_orig_params=True)"
            ')).')
    if not isinstance(model, FSDP):
        return
    kind = FSDP.get_state_dict_type(model).state_dict_type
    if kind == StateDictType.FULL_STATE_DICT:
        raise NotImplementedError(
            'olor-mm under FSDP keeps theta0 sharded like the parameters, '
            "in each rank's param groups, and saves it with the 'local' "
            "state dict only ('full' gathers the optimizer state to rank "
            "0, which holds its own shard of theta0 alone): set "
            "strategy.state_dict_cfg='local' (MMEngine's default).")


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

    Then it attaches the anchored method of ``method`` to the optimizer,
    under any wrapper type: OLOR's rollback by default
    (:func:`olor_mm.attach_rollback`: after every real update the groups
    with ``rollback > 0`` are pulled toward ``theta0``), or the L2-SP / EWC
    penalty (:mod:`olor_mm.core.penalty`). ``theta0`` of a tensor is its
    value just before its first update (the weights are loaded by then),
    unless a resume restored it.

    Extra ``paramwise_cfg`` keys:

    - ``method`` (str): ``'olor'``, ``'l2sp'`` or ``'ewc'``. ``'olor'``.

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
    - ``scale_with_lr`` (bool, OLOR): ``lam_eff = lam_i * lr_t / lr_0``.
      True.
    - ``anchor_dtype`` (str, optional): dtype of the stored ``theta0``.
      None (the parameters').
    - ``alpha``, ``beta`` (float, L2-SP and EWC): the weights of the pull
      toward theta0 and of the L2 penalty on the new weights. L2-SP 0.1 and
      0.01, EWC 1.0 and 0.
    - ``importance`` (str, OLOR): None, every weight of a layer pulled
      back alike (the paper's rollback); ``'fisher'``, the
      importance-weighted rollback, ``theta_t = theta_hat_t + lam_eff * w *
      (theta0 - theta_hat_t)`` with ``w`` in [0, 1] per element from the
      upstream diagonal Fisher (:mod:`olor_mm.core.importance`). None.
    - ``importance_norm`` (str, OLOR with ``importance``): ``w = F / (F +
      mean F)`` (``'mean'``) or ``F / max F`` (``'max'``) within each
      layer. ``'mean'``.
    - ``fisher_dataloader``, ``fisher_batches``, ``fisher_model``,
      ``fisher_checkpoint`` (EWC, and OLOR with ``importance``),
      ``fisher_normalize`` (EWC): where the upstream Fisher comes from
      (:mod:`olor_mm.engine.fisher_data`).
    - ``merge_groups`` (bool): one group per distinct set of options
      instead of one per parameter (torch's fused / foreach kernels batch
      within a group). True.
    - ``optimizer_impl`` (str): ``'auto'`` (fused where torch has it for the
      optimizer and device, else foreach), ``'fused'``, ``'foreach'`` or
      ``'torch_default'``. ``'auto'``.
    - ``decay_rate``, ``decay_type``, ``num_layers``: layer-wise learning
      rate decay, ``lr_mult_i = decay_rate ** (n - i)`` on these layers
      (:mod:`olor_mm.core.lr_decay`). Off.

    The older spellings (``type='L2SPOptimWrapper'``, the method's keys at
    the ``optim_wrapper`` level) are forwarded with a warning
    (:mod:`olor_mm.engine.deprecations`).

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
        optim_wrapper_cfg, paramwise_cfg = deprecations.translate(
            optim_wrapper_cfg, paramwise_cfg or {})
        check_unknown_keys(paramwise_cfg)
        given = list(paramwise_cfg)
        self.method = paramwise_cfg.pop('method', 'olor')
        check_method_keys(self.method, paramwise_cfg)
        self.olor_cfg = {
            k: paramwise_cfg.pop(k, v)
            for k, v in OLOR_DEFAULTS.items()
        }
        if self.method != 'olor':  # a rollback's key: unused by penalties
            paramwise_cfg.pop('scale_with_lr', None)
        self.method_cfg = {
            k: paramwise_cfg.pop(k, v)
            for k, v in METHOD_DEFAULTS[self.method].items()
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
        parse_anchor_dtype(self.method_cfg['anchor_dtype'])
        for key in ('alpha', 'beta'):
            if key in self.method_cfg:
                check_coefficient(f'paramwise_cfg.{key}', self.method_cfg[key],
                                  anchors.NAMES[self.method])
        if self.method == 'ewc':
            check_fisher_cfg(self.method_cfg)
        if self.method == 'olor':
            check_importance_keys(self.method_cfg, given)
        if self.method == 'olor' and not isinstance(
                self.method_cfg['scale_with_lr'], bool):
            raise TypeError(
                'paramwise_cfg.scale_with_lr='
                f"{self.method_cfg['scale_with_lr']!r} must be True or False "
                '(whether the rollback follows lr_t / lr_0).')
        check_wrapper_keys(optim_wrapper_cfg)
        _check_engine(optim_wrapper_cfg.get('type', 'OptimWrapper'))
        self.wrapper_cls = self._wrapper_class(optim_wrapper_cfg)
        _check_amp_device(self.wrapper_cls)
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

    # ------------------------------------------------------------- build
    def __call__(self, model: nn.Module):
        """Groups, optimizer, the method's anchor attached, the wrapper."""
        _check_fsdp(model)
        wrapped = model
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
        anchor = anchors.attach(self.method, optimizer, self.method_cfg, setup,
                                wrapped)
        anchor.param_names = {id(p): n for n, p in model.named_parameters()}
        anchor.built_by = type(self).__name__
        if self.method == 'olor' and not anchor.trainable:
            self._warn_nothing_rolls_back(model)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        optim_wrapper = OPTIM_WRAPPERS.build(
            wrapper_cfg, default_args=dict(optimizer=optimizer))
        # MMEngine's param schedulers walk OptimWrapper.param_groups, which
        # ends with a logging group (the optimizer's defaults): it gets
        # rollback=0, so LinearParamScheduler(param_name='rollback') works
        base = getattr(optim_wrapper, 'base_param_settings', None)
        if isinstance(base, dict):
            base.setdefault('rollback', 0.0)
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
