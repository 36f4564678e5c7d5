"""Layers a model declares itself, in timm's ``group_matcher`` convention.

timm models say how their parameters group into layers with
``model.group_matcher(coarse=False)`` (what timm's own layer-wise lr decay
uses): a dict of ``{group name: regex or [(regex, suffix), ...]}`` or a
callable ``name -> ordinal``. :func:`matcher_layers` numbers parameter names
exactly as timm's ``group_with_matcher`` does, without importing timm:

- each regex is tried with ``re.match`` in the dict's order; a match gives
  the key ``(group ordinal, *captured integers, *suffix)``; a name nothing
  matches gets ``(inf,)`` (timm's "neck, head" rule);
- keys sort, and each distinct key is a layer, except a key whose last
  element is ``99999`` (timm's ``MATCH_PREV_GROUP``), which joins the layer
  before it (e.g. a ViT's final norm joins its last block).

``group_matcher(coarse=True)`` gives the stage view the same way.

This module imports nothing of MMEngine or timm.
"""
import collections.abc
import re
from itertools import chain
from typing import Callable, Dict, List, Sequence, Tuple, Union

#: timm's ``MATCH_PREV_GROUP``: a key ending in it joins the previous layer
MATCH_PREV_GROUP = 99999

Matcher = Union[Dict[str, object], Callable[[str], object]]


def declares_groups(module) -> bool:
    """Whether ``module`` has timm's ``group_matcher`` method."""
    return callable(getattr(module, 'group_matcher', None))


def _compile(matcher: Matcher):
    if not isinstance(matcher, dict):
        return matcher
    compiled = []
    for ordinal, spec in enumerate(matcher.values()):
        if spec is None:
            continue
        if isinstance(spec, (tuple, list)):
            compiled += [(re.compile(s[0]), (ordinal, ), s[1]) for s in spec]
        else:
            compiled.append((re.compile(spec), (ordinal, ), None))
    return compiled


def _key(name: str, matcher) -> Tuple[float, ...]:
    if isinstance(matcher, (list, tuple)):
        for pattern, prefix, suffix in matcher:
            m = pattern.match(name)
            if m:
                parts = (prefix, m.groups(), suffix)
                return tuple(
                    map(float, chain.from_iterable(filter(None, parts))))
        return (float('inf'), )
    ordinal = matcher(name)
    if not isinstance(ordinal, collections.abc.Iterable):
        return (ordinal, )
    return tuple(ordinal)


def matcher_layers(names: Sequence[str], matcher: Matcher) -> List[List[str]]:
    """``names`` grouped into layers, shallowest first, by timm's rule."""
    compiled = _compile(matcher)
    grouping: Dict[tuple, List[str]] = collections.defaultdict(list)
    for name in names:
        grouping[_key(name, compiled)].append(name)
    layers: List[List[str]] = []
    for key in sorted(grouping):
        if layers and key[-1] == MATCH_PREV_GROUP:
            layers[-1].extend(grouping[key])
        else:
            layers.append(list(grouping[key]))
    return layers


def timm_layers(module) -> Tuple[List[List[str]], Dict[str, str]]:
    """The layers of a timm model and its stage view.

    Returns:
        tuple: layers (lists of parameter names, from
        ``group_matcher(coarse=False)``) and ``{name: 'stem' | 'stage<k>' |
        'top'}`` from ``group_matcher(coarse=True)``: its first group is the
        stem, names it leaves unmatched (the head) the top.
    """
    names = [n for n, _ in module.named_parameters()]
    layers = matcher_layers(names, module.group_matcher(coarse=False))
    coarse = _compile(module.group_matcher(coarse=True))
    stages: Dict[str, str] = {}
    for k, group in enumerate(matcher_layers(names, coarse)):
        top = _key(group[0], coarse) == (float('inf'), )
        for name in group:
            stages[name] = 'top' if top else (
                'stem' if k == 0 else f'stage{k}')
    return layers, stages
