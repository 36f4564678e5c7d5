"""Layer numbering by depth, per architecture, declared as data.

OLOR's layer-wise penalty (Eq. 8/9) needs the depth ``i`` of every pretrained
parameter. For a known backbone the depth comes from an ordered list of
*rules*, in the spirit of timm's ``group_matcher``: each rule is a regular
expression on the parameter name (relative to the backbone) and a suffix.
A parameter takes the first rule that matches; its *depth key* is the tuple of
integers the rule captured followed by the suffix, and keys sort by depth.
Layer ids are the ranks of the distinct keys, so the shallowest layer is 0
and the deepest is ``n``. Every parameter of the backbone counts, frozen or
not: freezing the stem changes no other layer's id.

For a ResNet the stem is layer 0, then every residual block in order
(``layer1.0`` ... ``layer4.2``): 17 layers, ids 0..16, for ResNet-50. For a
Swin the patch embedding is 0, then every block, with each stage's patch
merging and output norm as one layer at the end of that stage.

The same rules give a coarse, stage-level view (timm's
``group_matcher(coarse=True)``), :func:`stage_groups`: the stem, each stage,
and what follows the last stage. Drift is reported by it and stage-wise lr
decay counts its stages, so a new backbone is declared once, here.

This module knows nothing of MMEngine: it maps names to ids.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

__all__ = [
    'LAYER_SCHEMES', 'find_scheme', 'assign_block_ids', 'assign_param_ids',
    'compile_rules', 'number_layers', 'stage_groups'
]

_END = float('inf')  # suffix that places a layer after a stage's blocks
_START = -1.0  # suffix that places a layer before a stage's blocks

Rule = Union[str, Tuple[str, Sequence[float]]]

# ``(pattern, suffix)``: key = captured integers + suffix.
_RESNET: List[Rule] = [
    (r'^(?:stem|conv1|bn1|norm1)\.', (0, )),  # stem (deep stem of V1c/V1d)
    r'^layer(\d+)\.(\d+)\.',  # residual block j of stage s -> (s, j)
]
_SWIN: List[Rule] = [
    (r'^(?:patch_embed\.|absolute_pos_embed$)', (_START, )),
    r'^stages\.(\d+)\.blocks\.(\d+)\.',  # (s, j)
    (r'^stages\.(\d+)\.downsample\.', (_END, )),  # patch merging ends stage s
    (r'^norm(\d+)\.', (_END, )),  # output norm of stage s
]
_VIT: List[Rule] = [
    (r'^(?:cls_token$|pos_embed$|patch_embed\.|ln0\.|pre_ln\.)', (_START, )),
    r'^layers\.(\d+)\.',  # encoder layer j -> (j,)
    (r'^(?:ln1|norm1|final_norm)\.', (_END, )),  # final norm
]
_MIT: List[Rule] = [
    (r'^layers\.(\d+)\.0\.', (_START, )),  # overlapping patch embed of stage s
    r'^layers\.(\d+)\.1\.(\d+)\.',  # block j of stage s -> (s, j)
    (r'^layers\.(\d+)\.2\.', (_END, )),  # norm closing stage s
]
_CONVNEXT: List[Rule] = [
    (r'^downsample_layers\.(\d+)\.', (_START, )),  # stem (s=0), downsampling
    r'^stages\.(\d+)\.(\d+)\.',  # block j of stage s -> (s, j)
    (r'^norm(\d+)\.', (_END, )),  # output norm of stage s
]

# mmcv's conv + norm + activation unit, common in necks and heads: one layer.
_SINGLE_LAYER: List[Rule] = [(r'', ())]

#: Built-in schemes, by backbone class name (looked up along the class's
#: MRO, so ``ResNeXt``, ``ResNetV1d`` and other ``ResNet`` subclasses of
#: mmdet and mmseg inherit the ResNet rules).
LAYER_SCHEMES: Dict[str, List[Rule]] = {
    'ResNet': _RESNET,
    'ResNetV1c': _RESNET,
    'ResNetV1d': _RESNET,
    'ResNeXt': _RESNET,
    'SwinTransformer': _SWIN,
    'VisionTransformer': _VIT,
    'BEiT': _VIT,  # mmseg's BEiT (and MAE, its subclass): ViT's names
    'MixVisionTransformer': _MIT,
    'ConvNeXt': _CONVNEXT,
    'ConvModule': _SINGLE_LAYER,
}

#: the number the scheme's names give their first stage (MMDetection's and
#: MMSegmentation's ResNets count ``layer1`` ... ``layer4``), 0 if absent
FIRST_STAGE: Dict[str, int] = {
    name: 1
    for name, rules in LAYER_SCHEMES.items() if rules is _RESNET
}

CompiledRule = Tuple['re.Pattern[str]', Tuple[float, ...]]


def compile_rules(rules: Sequence[Rule]) -> List[CompiledRule]:
    """Compile ``[pattern | (pattern, suffix), ...]`` for :func:`depth_key`.

    Raises:
        ValueError: if a rule is not a pattern string or a
            ``(pattern, suffix)`` pair, or its pattern does not compile.
    """
    compiled = []
    for rule in rules:
        if isinstance(rule, str):
            pattern, suffix = rule, ()
        elif (isinstance(rule, (list, tuple)) and len(rule) == 2
              and isinstance(rule[0], str)):
            pattern, suffix = rule[0], tuple(rule[1])
        else:
            raise ValueError(
                f'paramwise_cfg.layer_patterns: {rule!r} is not a regex '
                'string or a (regex, suffix) pair; write e.g. '
                "[r'^stem\\.', r'^blocks\\.(\\d+)\\.']")
        try:
            compiled.append(
                (re.compile(pattern), tuple(float(s) for s in suffix)))
        except re.error as err:
            raise ValueError('paramwise_cfg.layer_patterns: pattern '
                             f'{pattern!r} does not compile: {err}') from err
    return compiled


def depth_key(name: str,
              rules: Sequence[CompiledRule]) -> Optional[Tuple[float, ...]]:
    """Depth key of parameter ``name`` under ``rules``; None if none match."""
    for pattern, suffix in rules:
        m = pattern.search(name)
        if m:
            groups = (float(g) for g in m.groups() if g is not None)
            return tuple(groups) + suffix
    return None


def find_scheme(cls: type) -> Tuple[Optional[str], Optional[List[Rule]]]:
    """The built-in scheme for ``cls`` or its nearest known base class."""
    for klass in cls.__mro__:
        if klass.__name__ in LAYER_SCHEMES:
            return klass.__name__, LAYER_SCHEMES[klass.__name__]
    return None, None


def assign_block_ids(names: Sequence[str],
                     rules: Sequence[Rule]) -> Tuple[List[int], int]:
    """Layer id of each name by the depth rules, and the number of layers.

    Raises:
        ValueError: naming the parameters no rule matches.
    """
    compiled = compile_rules(rules)
    keys = [depth_key(n, compiled) for n in names]
    missing = [n for n, k in zip(names, keys) if k is None]
    if missing:
        raise ValueError(
            f'{len(missing)} parameter(s) match no layer pattern, e.g. '
            f'{missing[:5]}; add patterns for them with '
            'paramwise_cfg.layer_patterns=[...] (regexes in depth order) '
            "or number tensors instead with layer_unit='param'.")
    rank = {k: i for i, k in enumerate(sorted(set(keys)))}
    return [rank[k] for k in keys], len(rank)


def assign_param_ids(names: Sequence[str]) -> Tuple[List[int], int]:
    """Reference-code numbering: each tensor is its own layer, in order."""
    return list(range(len(names))), len(names)


def number_layers(
    module,
    layer_unit: str = 'block',
    layer_patterns: Optional[Sequence[Rule]] = None
) -> Tuple[Dict[str, int], int, str]:
    """Number the layers of ``module`` (an ``nn.Module``) by depth.

    Args:
        module: The pretrained module (e.g. the backbone, or the whole model).
        layer_unit (str): ``'block'`` (architecture-aware) or ``'param'``
            (every tensor its own layer, as the reference code does).
        layer_patterns: Rules that override the built-in scheme.

    Returns:
        tuple: ``{param name: layer id}`` (names relative to ``module``, in
        ``named_parameters()`` order, frozen ones included), the number of
        layers, and a description of the scheme used, for the log.
    """
    names = [n for n, _ in module.named_parameters()]
    if layer_unit == 'param':
        ids, count = assign_param_ids(names)
        desc = 'param: one layer per tensor (reference-code numbering)'
    elif layer_unit != 'block':
        raise ValueError(
            f"paramwise_cfg.layer_unit={layer_unit!r} is unknown; use 'block' "
            "(architecture-aware layers) or 'param' (one layer per tensor).")
    elif layer_patterns is not None:
        ids, count = assign_block_ids(names, layer_patterns)
        desc = 'block: paramwise_cfg.layer_patterns'
    else:
        scheme, rules = find_scheme(type(module))
        if rules is not None:
            ids, count = assign_block_ids(names, rules)
            desc = f'block: {scheme} scheme'
        else:
            ids, count, parts = _children_ids(module, names)
            desc = (f'block: {type(module).__name__} has no scheme, fallback '
                    f'to registration order of its children ({parts})')
    return dict(zip(names, ids)), count, desc


def _children_ids(module, names: Sequence[str]):
    """Registration order of children; children with a scheme expand.

    Parameters the module owns itself (no dot in the name) form one layer
    together, where the first of them appears.
    """
    children = dict(module.named_children())
    heads: List[str] = []
    for n in names:
        head = n.split('.', 1)[0] if '.' in n else ''
        if head not in heads:
            heads.append(head)
    ids: Dict[str, int] = {}
    offset = 0
    parts = []
    for head in heads:
        members = [
            n for n in names
            if (n.split('.', 1)[0] if '.' in n else '') == head
        ]
        scheme, rules = (None, None) if head not in children else \
            find_scheme(type(children[head]))
        if rules is not None:
            sub, count = assign_block_ids([n[len(head) + 1:] for n in members],
                                          rules)
            parts.append(f'{head}: {scheme} scheme')
        else:
            sub, count = [0] * len(members), 1
            parts.append(f'{head or "own parameters"}: one layer')
        ids.update({n: offset + i for n, i in zip(members, sub)})
        offset += count
    return [ids[n] for n in names], offset, '; '.join(parts)


def _coarse_label(name: str, rules: Sequence[CompiledRule]):
    """Stage of ``name`` under ``rules``: the rule's first captured integer,
    ``'stem'`` / ``'top'`` for a rule that captures none (``'top'`` if it
    places its layer after the blocks), None if no rule matches."""
    for pattern, suffix in rules:
        m = pattern.search(name)
        if m:
            captured = [g for g in m.groups() if g is not None]
            if captured:
                return int(captured[0])
            return 'top' if suffix == (_END, ) else 'stem'
    return None


def _coarse_view(names: Sequence[str]):
    """(labels, first stage number) under the built-in scheme that places
    the most of ``names`` in stages; None if none does."""
    best = None
    for scheme, rules in LAYER_SCHEMES.items():
        if rules is _SINGLE_LAYER:
            continue
        compiled = compile_rules(rules)
        labels = [_coarse_label(n, compiled) for n in names]
        staged = sum(isinstance(label, int) for label in labels)
        if staged and (best is None or staged > best[0]):
            best = (staged, labels, FIRST_STAGE.get(scheme, 0))
    return None if best is None else best[1:]


def stage_groups(names: Sequence[str]) -> 'OrderedDict[str, List[str]]':
    """Coarse groups of parameter names (in registration order).

    Names are split by their top-level module (``backbone``, ``neck``, ...).
    Within one whose names the built-in schemes place in stages, the groups
    are ``<top>.stem`` (before the first stage), ``<top>.stage{k}`` (k from
    1) and ``<top>.top`` (after the last stage); a module without stages
    (a neck, a head) is one group, ``<top>``.
    """
    by_top: 'OrderedDict[str, List[str]]' = OrderedDict()
    for name in names:
        top, _, rest = name.partition('.')
        by_top.setdefault(top, []).append(rest)
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for top, rests in by_top.items():
        view = _coarse_view(rests)
        if view is None:
            groups[top] = [f'{top}.{r}' for r in rests]
            continue
        labels, first = view
        seen_stage = False
        for rest, label in zip(rests, labels):
            if isinstance(label, int):
                seen_stage = True
                key = f'stage{label + 1 - first}'
            elif label is None:  # no rule: where it stands
                key = 'top' if seen_stage else 'stem'
            else:
                key = label
            groups.setdefault(f'{top}.{key}', []).append(f'{top}.{rest}')
    return groups
