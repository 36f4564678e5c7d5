"""LayerwiseRollbackConstructor: parameter groups that carry OLOR's lam_i."""
import logging
from typing import Dict, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from .layer_schemes import number_layers
from .rollback import check_rollback_range, layerwise_rollback

#: paramwise_cfg keys this constructor reads, with their defaults (the
#: reference code's configuration).
OLOR_DEFAULTS = dict(
    rollback_max=0.01,
    rollback_min=0.0,
    rollback_power=1.0,
    pretrained_prefixes=('backbone', ),
    layer_unit='block',
    layer_patterns=None,
)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerwiseRollbackConstructor(DefaultOptimWrapperConstructor):
    """Parameter groups with a layer-wise rollback coefficient (OLOR Eq. 8/9).

    Builds the groups exactly as :class:`DefaultOptimWrapperConstructor` does
    (one group per parameter; ``custom_keys``, ``norm_decay_mult``,
    ``bias_decay_mult``, ``bypass_duplicate`` ... all keep working) and adds
    two keys to every group:

    - ``layer_id``: depth ``i`` of the parameter's layer among the pretrained
      layers ``0..n``, or None for a parameter that is not pretrained.
    - ``rollback``: ``lam_i = iota2 + (1 - i/n) ** gamma * (iota1 - iota2)``
      (``lam = iota1`` for a single layer), 0.0 for non-pretrained ones.

    :class:`OLOROptimWrapper` reads ``rollback`` and pulls the pretrained
    parameters back toward ``theta0`` after every update.

    Extra ``paramwise_cfg`` keys:

    - ``rollback_max`` (float): iota1, lam of the shallowest layer. 0.01.
    - ``rollback_min`` (float): iota2, lam of the deepest layer. 0.0.
    - ``rollback_power`` (float): gamma, the decay with depth. 1.0.
    - ``pretrained_prefixes`` (tuple[str]): modules whose parameters hold
      pretrained values and roll back; ``('',)`` is the whole model.
      ``('backbone',)``.
    - ``layer_unit`` (str): ``'block'``, layers by architecture (stem, then
      each residual / transformer block); or ``'param'``, the reference
      code's numbering (every tensor a layer). ``'block'``.
    - ``layer_patterns`` (list, optional): depth rules (regexes on parameter
      names relative to the prefix, in depth order, or ``(regex, suffix)``
      pairs) that replace the built-in scheme of the backbone.

    Layers are counted over every parameter of the pretrained modules,
    frozen or not; frozen parameters are not in the optimizer.

    Examples:
        >>> optim_wrapper = dict(
        >>>     type='OLOROptimWrapper',
        >>>     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        >>>     constructor='LayerwiseRollbackConstructor',
        >>>     paramwise_cfg=dict(
        >>>         rollback_max=0.01, rollback_min=0.0, rollback_power=1.0,
        >>>         pretrained_prefixes=('backbone',),
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
        self.olor_cfg = {
            k: paramwise_cfg.pop(k, v)
            for k, v in OLOR_DEFAULTS.items()
        }
        check_rollback_range(self.olor_cfg['rollback_max'],
                             self.olor_cfg['rollback_min'],
                             self.olor_cfg['rollback_power'])
        prefixes = self.olor_cfg['pretrained_prefixes']
        if isinstance(prefixes, str):
            prefixes = (prefixes, )
        if not prefixes or not all(isinstance(p, str) for p in prefixes):
            raise ValueError(
                f'paramwise_cfg.pretrained_prefixes={prefixes!r} must be a '
                "non-empty tuple of module names, e.g. ('backbone',), or "
                "('',) for the whole model.")
        self.olor_cfg['pretrained_prefixes'] = tuple(prefixes)
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        # Always take the per-parameter path of the parent's ``__call__``.
        self.paramwise_cfg.setdefault('bypass_duplicate', False)

    def __call__(self, model: nn.Module):
        if hasattr(model, 'module'):
            model = model.module
        self._layer_of, self._layer_lams = self.number_pretrained(model)
        self._param_names = {id(p): n for n, p in model.named_parameters()}
        return super().__call__(model)

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module=None) -> None:
        """Add the parent's groups, then tag each with layer_id/rollback."""
        start = len(params)
        super().add_params(params, module, prefix, is_dcn_module)
        if prefix:  # the recursion below the root tags nothing itself
            return
        for group in params[start:]:
            (param, ) = group['params']
            layer = self._layer_of.get(self._param_names[id(param)])
            group['layer_id'] = layer
            group['rollback'] = (0.0 if layer is None else
                                 self._layer_lams[layer])
        self._log_table(params[start:])

    def number_pretrained(
            self, model: nn.Module) -> Tuple[Dict[str, int], List[float]]:
        """Layer id of every pretrained parameter name, and lam per layer.

        Prefixes are numbered one after another in the order given, so
        ``('backbone', 'neck')`` puts the neck after the deepest backbone
        layer.
        """
        cfg = self.olor_cfg
        modules = dict(model.named_modules())
        layer_of: Dict[str, int] = {}
        offset = 0
        prefixes = cfg['pretrained_prefixes']
        for prefix in prefixes:
            nested = [q for q in prefixes if q != prefix and (
                prefix == '' or q.startswith(prefix + '.'))]
            if nested:
                raise ValueError(
                    f'paramwise_cfg.pretrained_prefixes: {nested} lie inside '
                    f'{prefix!r}; list each pretrained module once.')
            module = modules.get(prefix)
            n_params = 0 if module is None else sum(
                1 for _ in module.parameters())
            if n_params == 0:
                raise ValueError(
                    f'paramwise_cfg.pretrained_prefixes entry {prefix!r} '
                    f'matches no parameter of {type(model).__name__} (its '
                    'top-level modules: '
                    f'{[n for n, _ in model.named_children()]}); name the '
                    "pretrained module, e.g. 'backbone', or '' for the whole "
                    'model.')
            ids, count, desc = number_layers(module, cfg['layer_unit'],
                                             cfg['layer_patterns'])
            print_log(
                f'OLOR layers of {prefix or "the whole model"} '
                f'({type(module).__name__}): {count} layers, {desc}',
                logger='current')
            dot = f'{prefix}.' if prefix else ''
            layer_of.update({dot + n: offset + i for n, i in ids.items()})
            offset += count
        n = offset - 1
        lams = [
            layerwise_rollback(i, n, cfg['rollback_max'], cfg['rollback_min'],
                               cfg['rollback_power']) for i in range(offset)
        ]
        return layer_of, lams

    def _log_table(self, groups: List[dict]) -> None:
        """One table: layer id, lam_i, tensors and parameters per layer.

        Layers whose parameters are all frozen show 0 tensors: they keep
        their place in the numbering but are not in the optimizer.
        """
        rows = {i: [0, 0] for i in range(len(self._layer_lams))}
        for g in groups:
            if g['layer_id'] is not None:
                rows[g['layer_id']][0] += 1
                rows[g['layer_id']][1] += g['params'][0].numel()
        lines = [f'{"layer":>5} {"lam_i":>10} {"tensors":>8} {"params":>12}']
        lines += [
            f'{i:>5} {self._layer_lams[i]:>10.6f} {t:>8} {n:>12,}'
            for i, (t, n) in rows.items()
        ]
        rolled = [(t, n) for i, (t, n) in rows.items()
                  if self._layer_lams[i] > 0]
        lines.append(
            f'OLOR rolls back {sum(n for _, n in rolled):,} parameters in '
            f'{sum(t for t, _ in rolled)} tensors; {len(rows)} pretrained '
            'layers.')
        print_log('OLOR layer-wise rollback:\n' + '\n'.join(lines),
                  logger='current', level=logging.INFO)
