"""OLOR's layer numbering: the depth ``i`` of every pretrained parameter.

Eq. 8/9 gives each pretrained layer its own ``lam_i`` by depth. One engine
numbers any module, trying its sources in a fixed order and saying which one
it used:

1. ``layer_patterns``: rules given in the config (or the plain API);
2. a **scheme registered** for the module's class or a base class
   (:func:`olor_mm.register_layer_scheme`; the built-in ones cover every
   backbone MMDetection, MMSegmentation and mmpretrain export:
   :mod:`olor_mm.layers.builtin_schemes`);
3. the **model's own declaration**: timm's ``group_matcher(coarse=False)``
   (:mod:`olor_mm.layers.timm_groups`);
4. **automatic block discovery** (:mod:`olor_mm.layers.block_discovery`):
   repeated blocks are layers in order, the other parameters keep their place.

``layer_unit='param'`` numbers every tensor instead (the reference code).

``pretrained_prefixes`` say *which* parameters are pretrained (modules or
single parameters, ``''`` for the whole model, minus ``exclude``); how they
are numbered comes from the engine: a prefix is numbered by the nearest
module above it (or itself) that declares a numbering (2 or 3), restricted
to the chosen parameters, so that ``('conv1', 'bn1', 'layer1', ...)`` of a
timm ResNet gives one stem layer. Prefixes nothing declares are numbered by
discovery on their own module. Prefixes numbered by different modules
follow one another in the order given.

The same source gives the stage view (:func:`stage_groups`: the drift
groups, stage-wise lr decay), so that both agree on a model.

This module imports nothing of MMEngine.
"""
import logging
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch.nn as nn

from . import builtin_schemes  # noqa: F401  (registers the built-in ones)
from .block_discovery import BlockFinder
from .layer_schemes import Rule, compile_rules, find_scheme, rule_layers
from .timm_groups import declares_groups, timm_layers

logger = logging.getLogger(__name__)

__all__ = [
    'Numbered', 'LayerNumbering', 'number_module', 'number_pretrained',
    'stage_groups', 'check_prefixes', 'tensor_layers', 'shared_names'
]

LAYER_UNITS = ('block', 'param')


class Numbered(NamedTuple):
    """One module's numbering: its layers (lists of parameter names
    relative to it, shallowest first), their stage view (``{name: 'stem' |
    'stage<k>' | 'top'}``, empty for a module without stages), the source,
    for the log, and whether parallel branches share layers by design."""
    layers: List[List[str]]
    stages: Dict[str, str]
    source: str
    multi_branch: bool = False
    #: the source of each layer where they differ (discovery numbers some
    #: sub-modules by their own schemes); None: ``source`` for all
    layer_sources: Optional[List[str]] = None

    def source_of(self, layer: int) -> str:
        return (self.layer_sources[layer]
                if self.layer_sources else self.source)


def declared(module: nn.Module) -> Optional[Numbered]:
    """The numbering ``module`` declares: a registered scheme (source 2)
    or timm's ``group_matcher`` (source 3); None if neither."""
    scheme = find_scheme(type(module))
    if scheme is not None:
        layers, stages = scheme.layers(module)
        return Numbered(layers, stages, f'scheme {scheme.name}',
                        scheme.multi_branch)
    if declares_groups(module):
        layers, stages = timm_layers(module)
        return Numbered(layers, stages, 'timm group_matcher')
    return None


def number_module(module: nn.Module,
                  layer_unit: str = 'block',
                  layer_patterns: Optional[Sequence[Rule]] = None) -> Numbered:
    """Number the layers of ``module`` by depth, from the first source that
    applies (see the module docstring).

    Raises:
        ValueError: for an unknown ``layer_unit``, ``layer_patterns`` with
            ``layer_unit='param'``, bad patterns or names they leave out.
    """
    check_layer_unit(layer_unit, layer_patterns)
    names = [n for n, _ in module.named_parameters()]
    if layer_unit == 'param':
        return Numbered([[n] for n in names], {},
                        'layer_unit=param (one layer per tensor)')
    if layer_patterns is not None:
        rules = compile_rules(layer_patterns)
        layers, taken = rule_layers(names, rules)
        check_patterns(layer_patterns, taken, len(layers))
        return Numbered(layers, {}, 'layer_patterns')
    own = declared(module)
    if own is not None:
        return own
    finder = BlockFinder(module, declared)
    layers, sources = finder.units()
    used = sorted(set(s for s in sources if s != 'blocks'))
    return Numbered(
        layers,
        finder.stage_of(),
        'block discovery' + (f' (with {", ".join(used)})' if used else ''),
        layer_sources=[
            'block discovery' if s == 'blocks' else s for s in sources
        ] if used else None)


def check_layer_unit(layer_unit, layer_patterns) -> None:
    if layer_unit not in LAYER_UNITS:
        raise ValueError(
            f"paramwise_cfg.layer_unit={layer_unit!r} is unknown; use 'block' "
            "(architecture-aware layers) or 'param' (one layer per tensor).")
    if layer_unit == 'param' and layer_patterns is not None:
        raise ValueError(
            "paramwise_cfg.layer_patterns numbers blocks, but layer_unit="
            "'param' numbers every tensor and would ignore them; remove "
            "layer_patterns, or set layer_unit='block'.")


def check_patterns(patterns, taken: List[int], count: int) -> None:
    """Refuse user patterns that cannot mean what they say.

    A rule that takes no parameter, although some parameter matches it, is
    shadowed by an earlier rule (a catch-all written first); more than one
    rule collapsing into a single layer means the rules capture no depth.
    """
    rules = compile_rules(patterns)
    for index, (n, (pattern, _, _)) in enumerate(zip(taken, rules)):
        if n == 0:
            raise ValueError(
                f'paramwise_cfg.layer_patterns: rule {index} '
                f'({pattern.pattern!r}) numbers no parameter: an earlier '
                'rule takes every name it matches, or none matches. Rules '
                'are tried in order and the first match wins: put the '
                'specific rules before a catch-all, remove the dead one.')
    if count == 1 and len(rules) > 1:
        raise ValueError(
            f'paramwise_cfg.layer_patterns: the {len(rules)} rules give '
            'one layer for every parameter: a rule orders its parameters by '
            "the integers it captures and its suffix, not by its place in "
            "the list. Capture the depth (r'^blocks\\.(\\d+)\\.') or give "
            "each rule a suffix ((r'^stem\\.', (0,)), (r'^head\\.', (1,))).")


def check_prefixes(prefixes) -> Tuple[str, ...]:
    """``pretrained_prefixes`` as a tuple of module / parameter names.

    A single string is one prefix; ``''`` is the whole model.

    Raises:
        ValueError: for an empty value, a non-string entry, or an entry that
            lies inside (or repeats) another.
    """
    if isinstance(prefixes, str):
        prefixes = (prefixes, )
    if (not isinstance(prefixes, (list, tuple)) or not prefixes
            or not all(isinstance(p, str) for p in prefixes)):
        raise ValueError(
            f'pretrained_prefixes={prefixes!r} must be a non-empty tuple of '
            "module or parameter names, e.g. ('backbone',), or ('',) for "
            'the whole model.')
    for prefix in prefixes:
        nested = [
            q for q in prefixes
            if q != prefix and (prefix == '' or q.startswith(prefix + '.'))
        ]
        if nested or list(prefixes).count(prefix) > 1:
            raise ValueError(
                f'pretrained_prefixes: {nested or [prefix]} lie inside (or '
                f'repeat) {prefix!r}; list each pretrained module once.')
    return tuple(prefixes)


def _under(name: str, prefix: str) -> bool:
    return prefix == '' or name == prefix or name.startswith(prefix + '.')


def _exclude_names(model: nn.Module, exclude) -> List[str]:
    """``exclude`` (names, modules or parameters) as name prefixes."""
    if exclude is None:
        return []
    if isinstance(exclude, (str, nn.Module, nn.Parameter)):
        exclude = [exclude]
    by_id = {id(m): n for n, m in model.named_modules()}
    by_id.update(
        (id(p), n) for n, p in model.named_parameters(remove_duplicate=False))
    out = []
    for item in exclude:
        if isinstance(item, str):
            name = item
            if name not in by_id.values():
                hint = (f' (without the trailing dot: {name.rstrip(".")!r})'
                        if name.endswith('.') else '')
                raise ValueError(
                    f'exclude (paramwise_cfg.exclude_prefixes) entry '
                    f'{name!r} matches no module or parameter of '
                    f'{type(model).__name__}{hint}; its top-level modules: '
                    f'{[n for n, _ in model.named_children()]}. Name the '
                    "module to leave out, e.g. 'head'.")
        else:
            name = by_id.get(id(item))
            if name is None:
                raise ValueError(
                    f'exclude: {type(item).__name__} is not part of '
                    f'{type(model).__name__}.')
        out.append(name)
    return out


class LayerNumbering(NamedTuple):
    """The numbering of a model's pretrained parameters.

    Attributes:
        layer_of: ``{full parameter name: layer id}`` (0..count-1).
        count: The number of layers, ``n + 1``.
        notes: One line per numbered module: prefixes, class, layers and
            the source of the numbering.
        sources: The source of each layer's numbering (``count`` entries).
        frozen: The frozen layers (every tensor ``requires_grad=False``
            when numbered, e.g. ``frozen_stages``), which take no depth:
            ``(position, names, source)``, listed before layer
            ``position`` (``count`` for after the last).
    """
    layer_of: Dict[str, int]
    count: int
    notes: List[str]
    sources: List[str]
    frozen: Tuple[Tuple[int, List[str], str], ...] = ()


def _root_of(model: nn.Module, prefix: str, modules: dict, params: dict,
             search: bool) -> str:
    """The module that numbers ``prefix``: the nearest one above it (or
    itself) that declares a numbering; else its own module (a parameter's:
    the module that owns it)."""
    own = prefix if prefix in modules else prefix.rpartition('.')[0]
    if search:
        path = own
        while True:
            if declared_source(modules[path]):
                return path
            if path == '':
                break
            path = path.rpartition('.')[0]
    return own


def declared_source(module: nn.Module) -> bool:
    return find_scheme(type(module)) is not None or declares_groups(module)


def number_pretrained(model: nn.Module,
                      pretrained_prefixes: Sequence[str] = ('backbone', ),
                      layer_unit: str = 'block',
                      layer_patterns: Optional[Sequence[Rule]] = None,
                      exclude=None) -> LayerNumbering:
    """Layer id of every pretrained parameter of ``model``.

    Only what is fine-tuned is numbered: a layer whose every tensor is
    frozen (``requires_grad=False`` now, e.g. a backbone's
    ``frozen_stages``) takes no depth and is listed in
    :attr:`LayerNumbering.frozen`, so the shallowest trainable pretrained
    layer is ``i = 0`` and gets ``rollback_max``.

    Args:
        model: The model.
        pretrained_prefixes: Modules or parameters holding pretrained
            values; ``('',)`` is the whole model.
        layer_unit: ``'block'`` or ``'param'``.
        layer_patterns: Rules replacing every other source, relative to
            each prefix's module.
        exclude: Names (or the modules / parameters themselves) left out,
            e.g. the classifier: ``exclude=model.get_classifier()``.

    Raises:
        ValueError: naming ``pretrained_prefixes`` when an entry matches no
            parameter (or only excluded ones), and the other keys when they
            are bad.
    """
    prefixes = check_prefixes(pretrained_prefixes)
    check_layer_unit(layer_unit, layer_patterns)
    modules = dict(model.named_modules())
    # every name of a tensor shared by several modules: it is pretrained
    # if any of its names is (tensor_layers)
    params = dict(model.named_parameters(remove_duplicate=False))
    excluded = _exclude_names(model, exclude)
    chosen: Dict[str, List[str]] = OrderedDict()
    for prefix in prefixes:
        if prefix not in modules and prefix not in params:
            raise ValueError(
                f'pretrained_prefixes entry {prefix!r} matches no module or '
                f'parameter of {type(model).__name__} (its top-level '
                f'modules: {[n for n, _ in model.named_children()]}); name '
                "the pretrained module, e.g. 'backbone', or '' for the "
                'whole model.')
        names = [
            n for n in params
            if _under(n, prefix) and not any(_under(n, e) for e in excluded)
        ]
        if not names:
            raise ValueError(
                f'pretrained_prefixes entry {prefix!r} holds no parameter' +
                (' that exclude leaves in' if excluded else '') +
                "; name the pretrained module, e.g. 'backbone', or '' for "
                'the whole model.')
        chosen[prefix] = names
    search = layer_unit == 'block' and layer_patterns is None
    roots: Dict[str, List[str]] = OrderedDict()
    for prefix in prefixes:
        roots.setdefault(_root_of(model, prefix, modules, params, search),
                         []).append(prefix)
    layer_of: Dict[str, int] = {}
    notes: List[str] = []
    sources: List[str] = []
    frozen: List[Tuple[int, List[str], str]] = []
    offset = 0
    for root, members in roots.items():
        module = modules[root]
        numbered = number_module(module, layer_unit, layer_patterns)
        dot = f'{root}.' if root else ''
        wanted = {n for p in members for n in chosen[p]}
        layers, kept, stiff = [], [], 0
        for i, layer in enumerate(numbered.layers):
            names = [dot + n for n in layer if dot + n in wanted]
            if not names:
                continue
            if not any(params[n].requires_grad for n in names):
                frozen.append(
                    (offset + len(layers), names, numbered.source_of(i)))
                stiff += 1
                continue
            layers.append(names)
            kept.append(numbered.source_of(i))
        for i, layer in enumerate(layers):
            layer_of.update((n, offset + i) for n in layer)
        offset += len(layers)
        what = ', '.join(repr(p) for p in members)
        if members != [root]:
            what += f' (numbered within {root or "the model"!r})'
        notes.append(
            f'{what} ({type(module).__name__}): {len(layers)} '
            f'layers, numbered by {numbered.source}' +
            (f'; {stiff} frozen layers take no depth' if stiff else ''))
        sources += kept
        if members == [root] and layer_unit == 'block':
            _warn_if_coarse(module, root, numbered, len(layers) + stiff)
    return LayerNumbering(layer_of, offset, notes, sources, tuple(frozen))


def tensor_layers(model: nn.Module, layer_of: Dict[str,
                                                   int]) -> Dict[int, int]:
    """``{id(tensor): layer}`` of the pretrained tensors: a tensor shared by
    several modules (tied weights) takes the shallowest layer any of its
    names has, whichever name ``named_parameters()`` lists first."""
    out: Dict[int, int] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if name in layer_of:
            out[id(p)] = min(out.get(id(p), layer_of[name]), layer_of[name])
    return out


def shared_names(model: nn.Module) -> List[List[str]]:
    """The names of each tensor that several modules share (tied
    weights), first name first."""
    names: Dict[int, List[str]] = OrderedDict()
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    return [n for n in names.values() if len(n) > 1]


def _warn_if_coarse(module, root, numbered: Numbered, count: int) -> None:
    """Warn when a numbering puts two of the module's repeated blocks into
    one layer (not for discovery itself, nor for multi-branch schemes,
    which share layers across branches by design)."""
    if numbered.source.startswith('block discovery') or numbered.multi_branch:
        return
    blocks = BlockFinder(module).blocks()
    block_of = {n: k for k, names in enumerate(blocks) for n in names}
    shared = set()
    for layer in numbered.layers:
        touched = {block_of[n] for n in layer if n in block_of}
        if len(touched) > 1:
            shared |= touched
    if shared:
        logger.warning(
            'OLOR layers of %r: numbered by %s, %d of the %d repeated blocks '
            'of %s share layers with other blocks (%d layers in all): the '
            'decay of lam with depth is coarser than the model. Check it '
            'with tools/analysis_tools/print_layers.py; a scheme of its own '
            '(olor_mm.register_layer_scheme) or paramwise_cfg.layer_patterns '
            'number it block by block.', root or 'the model', numbered.source,
            len(shared), len(blocks),
            type(module).__name__, count)


def stage_groups(model: nn.Module,
                 names: Sequence[str]) -> 'OrderedDict[str, List[str]]':
    """Coarse groups of parameter names of ``model`` (in ``names`` order).

    Names are split by their top-level module (``backbone``, ``neck``, ...).
    A module whose numbering has stages (see :func:`number_module`) gives
    ``<top>.stem``, ``<top>.stage<k>`` (k from 1) and ``<top>.top``; a
    module without stages (a neck, a head) is one group, ``<top>``.
    """
    modules = dict(model.named_children())
    by_top: 'OrderedDict[str, List[str]]' = OrderedDict()
    for name in names:
        top = name.partition('.')[0]
        by_top.setdefault(top, []).append(name)
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for top, members in by_top.items():
        module = modules.get(top)
        stages = {} if module is None else number_module(module).stages
        for name in members:
            label = stages.get(name[len(top) + 1:])
            groups.setdefault(f'{top}.{label}' if label else top,
                              []).append(name)
    return groups
