"""Layer schemes: a backbone's depth order as rules, and their registry.

OLOR's layer-wise penalty (Eq. 8/9) needs the depth ``i`` of every pretrained
parameter. A *scheme* declares it for a backbone class as an ordered list of
*rules*, in the spirit of timm's ``group_matcher``: each rule is a regular
expression on the parameter name (relative to the backbone) and a suffix.
A parameter takes the first rule that matches (``re.search``); its *depth
key* is the tuple of integers the rule captured followed by the suffix, and
keys sort by depth: each distinct key is one layer, the shallowest first.
For a ResNet::

    (r'^(?:stem|conv1|bn1|norm1)\\.', (0, ))   # the stem: key (0,)
    r'^layer(\\d+)\\.(\\d+)\\.'                  # block j of stage s: (s, j)

gives the stem, then every residual block in order: 17 layers for a
ResNet-50. Suffixes place what is not a block: ``START`` (-1) before a
stage's blocks (a patch embedding, a downsampling), ``END`` (inf) after
them (a stage's output norm).

The same rules give the coarse, stage-level view (timm's
``group_matcher(coarse=True)``): a parameter's stage is the first integer its
rule captured; a rule that captures none places it in the ``stem`` (or the
``top``, with suffix ``END``).

Schemes are registered by class (:func:`register_layer_scheme`), for a class
object or a ``'package.ClassName'`` string (``'mmdet.ResNet'``, the package
being the first part of the class's module), and found along the class's
MRO, so subclasses inherit them. The built-in ones live in
:mod:`olor_mm.layers.builtin_schemes`.

This module knows nothing of MMEngine: it maps names to depth keys.
"""
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

__all__ = [
    'START', 'END', 'Rule', 'LayerScheme', 'register_layer_scheme',
    'find_scheme', 'compile_rules', 'rule_layers', 'scheme_key'
]

END = float('inf')  # suffix that places a layer after a stage's blocks
START = -1.0  # suffix that places a layer before a stage's blocks

Rule = Union[str, Tuple[str, Sequence[float]], Tuple[str, Sequence[float],
                                                     Sequence[float]]]
Rules = Sequence[Rule]
#: (pattern, prefix, suffix): key = prefix + captured integers + suffix
CompiledRule = Tuple['re.Pattern[str]', Tuple[float, ...], Tuple[float, ...]]


def _numbers(value, pattern: str, what: str, key: str) -> Tuple[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, )
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool)
            for s in value):
        raise ValueError(
            f'{key}: the {what} of rule {pattern!r} is {value!r}; it must be '
            'a tuple of numbers, e.g. (0,) or (-1,), that places the layer '
            'among the captured depths.')
    return tuple(float(s) for s in value)


def compile_rules(
        rules: Rules,
        key: str = 'paramwise_cfg.layer_patterns') -> List[CompiledRule]:
    """Compile ``[pattern | (pattern, suffix) | (pattern, prefix, suffix),
    ...]``; a parameter's key is ``prefix + captured integers + suffix``.

    Raises:
        ValueError: naming ``key`` if the rules are not a list of pattern
            strings, ``(pattern, suffix)`` pairs or ``(pattern, prefix,
            suffix)`` triples (prefix and suffix being tuples of numbers),
            or a pattern does not compile.
    """
    example = "[r'^stem\\.', r'^blocks\\.(\\d+)\\.']"
    if isinstance(rules, (str, bytes)) or not isinstance(rules, (list, tuple)):
        raise ValueError(
            f'{key}={rules!r} must be a list of rules (a regex string or a '
            f'(regex, suffix) pair each), e.g. {example}.')
    compiled = []
    for rule in rules:
        if isinstance(rule, str):
            pattern, prefix, suffix = rule, (), ()
        elif (isinstance(rule, (list, tuple)) and len(rule) in (2, 3)
              and isinstance(rule[0], str)):
            pattern, prefix, suffix = ((rule[0], (),
                                        rule[1]) if len(rule) == 2 else rule)
        else:
            raise ValueError(
                f'{key}: {rule!r} is not a regex string or a (regex, suffix) '
                f'pair; write e.g. {example}.')
        prefix = _numbers(prefix, pattern, 'prefix', key)
        suffix = _numbers(suffix, pattern, 'suffix', key)
        try:
            compiled.append((re.compile(pattern), prefix, suffix))
        except re.error as err:
            raise ValueError(f'{key}: pattern {pattern!r} does not compile '
                             f'as a regex: {err}') from err
    return compiled


def _match(name: str, rules: Sequence[CompiledRule]):
    for index, (pattern, prefix, suffix) in enumerate(rules):
        m = pattern.search(name)
        if m:
            return index, m, prefix, suffix
    return None


def _key(m, prefix, suffix) -> Tuple[float, ...]:
    captured = [g for g in m.groups() if g is not None]
    try:
        return prefix + tuple(float(g) for g in captured) + suffix
    except ValueError:
        raise ValueError(
            f'layer rule {m.re.pattern!r} (layer_patterns or a layer '
            f'scheme) captured {captured} from {m.string!r}: a capture is a '
            r"depth and must be digits, e.g. r'^layers\.(\d+)\.'; group "
            r"alternatives without capturing: r'^(?:conv1|bn1)\.'.") from None


def depth_key(name: str,
              rules: Sequence[CompiledRule]) -> Optional[Tuple[float, ...]]:
    """Depth key of parameter ``name`` under ``rules``; None if none match."""
    found = _match(name, rules)
    return None if found is None else _key(*found[1:])


def rule_layers(
    names: Sequence[str],
    rules: Sequence[CompiledRule],
    key: str = 'paramwise_cfg.layer_patterns'
) -> Tuple[List[List[str]], List[int]]:
    """``names`` grouped into layers by depth key, shallowest first, and
    how many names each rule took.

    Raises:
        ValueError: naming ``key`` and the parameters no rule matches.
    """
    keys, taken = {}, [0] * len(rules)
    missing = []
    for name in names:
        found = _match(name, rules)
        if found is None:
            missing.append(name)
            continue
        taken[found[0]] += 1
        keys[name] = _key(*found[1:])
    if missing:
        raise ValueError(
            f'{len(missing)} parameter(s) match no rule of {key}, e.g. '
            f'{missing[:5]}; add patterns for them (regexes on the names '
            'relative to the pretrained module, each capturing the '
            "integers that order it, e.g. r'^blocks\\.(\\d+)\\.'), or "
            "number tensors instead with layer_unit='param'.")
    layers: 'OrderedDict[tuple, List[str]]' = OrderedDict()
    for k in sorted(set(keys.values())):
        layers[k] = []
    for name in names:
        layers[keys[name]].append(name)
    return list(layers.values()), taken


def coarse_labels(names: Sequence[str], rules: Sequence[CompiledRule],
                  first_stage: int) -> Dict[str, str]:
    """``{name: 'stem' | 'stage<k>' | 'top'}``: the stage is the first
    number of a name's key (k counted from 1, ``first_stage`` being the
    number of the first stage); ``'stem'`` / ``'top'`` for a key with only
    the suffix (``'top'`` if it starts with END)."""
    out = {}
    for name in names:
        found = _match(name, rules)
        if found is None:
            continue
        _, m, prefix, suffix = found
        key = _key(m, prefix, suffix)
        if len(key) == len(suffix):  # the suffix alone: stem or top
            out[name] = 'top' if key[:1] == (END, ) else 'stem'
        elif key[0] == END:
            out[name] = 'top'
        else:
            stage = int(key[0]) + 1 - first_stage
            out[name] = f'stage{stage}' if stage >= 1 else 'stem'
    return out


class LayerScheme:
    """The depth rules of one backbone class.

    Args:
        name (str): How the log names it, e.g. ``'mmdet.ResNet'``.
        rules (list | callable): The rules, or ``rules(module)`` returning
            them for one instance (when they depend on its configuration,
            e.g. how many stages it has).
        first_stage (int): The number the names give their first stage
            (``layer1`` ... in MMDetection's ResNet: 1); 0 by default.
        note (str): What the scheme does, for the docs' table.
        multi_branch (bool): The scheme gives blocks at the same depth of
            parallel branches one layer, so it has fewer layers than blocks
            by design (no coarseness warning).
    """

    def __init__(self,
                 name: str,
                 rules: Union[Rules, Callable[..., Rules]],
                 first_stage: int = 0,
                 note: str = '',
                 multi_branch: bool = False):
        self.name = name
        self.rules = rules
        self.first_stage = first_stage
        self.note = note
        self.multi_branch = multi_branch
        if not callable(rules):
            compile_rules(rules, f'the layer scheme of {name}')

    def compiled(self, module) -> List[CompiledRule]:
        rules = self.rules(module) if callable(self.rules) else self.rules
        return compile_rules(rules, f'the layer scheme of {self.name}')

    def layers(self, module) -> Tuple[List[List[str]], Dict[str, str]]:
        """The module's layers (lists of parameter names) and stages."""
        names = [n for n, _ in module.named_parameters()]
        rules = self.compiled(module)
        layers, _ = rule_layers(names, rules,
                                f'the layer scheme of {self.name}')
        return layers, coarse_labels(names, rules, self.first_stage)


#: registered schemes, by class object or 'package.ClassName'
_SCHEMES: Dict[Union[type, str], LayerScheme] = {}


def scheme_key(cls: type) -> str:
    """``'package.ClassName'`` of a class (``'mmdet.ResNet'``)."""
    return f'{cls.__module__.split(".")[0]}.{cls.__name__}'


def register_layer_scheme(target=None,
                          rules: Union[Rules, Callable[..., Rules],
                                       None] = None,
                          *,
                          first_stage: int = 0,
                          note: str = '',
                          multi_branch: bool = False,
                          force: bool = False):
    """Declare how a backbone class's layers are numbered by depth.

    OLOR numbers a module by the first scheme found along its class's MRO,
    before timm's ``group_matcher`` and before automatic block discovery;
    a config's ``paramwise_cfg.layer_patterns`` still wins. Call it in a
    module the config imports (``custom_imports``), next to the backbone.

    Args:
        target (type | str): The backbone class, ``'package.ClassName'``
            (``'mmdet.ResNet'``) or its full dotted path
            (``'mmdet.models.backbones.resnet.ResNet'``), or a tuple of
            them (the same scheme for each). Omitted: a class decorator.
        rules (list | callable): Depth rules (see the module docstring), or
            ``rules(module) -> list`` for rules that depend on the instance.
        first_stage (int): The number the names give the first stage.
        note (str): A line for the docs' table of backbones.
        multi_branch (bool): The rules give blocks at the same depth of
            parallel branches one layer (no warning that the numbering is
            coarser than the blocks).
        force (bool): Replace an existing scheme for ``target``.

    Example:
        >>> from olor_mm import register_layer_scheme
        >>> register_layer_scheme(MyNet, [
        ...     (r'^stem\\.', (0,)),              # the stem first
        ...     r'^stages\\.(\\d+)\\.(\\d+)\\.',     # then block j of stage s
        ...     (r'^norm\\.', (float('inf'),)),  # the final norm last
        ... ])
    """
    if rules is None:
        raise ValueError('register_layer_scheme needs rules=[...] (regexes '
                         'on parameter names, in depth order).')
    options = dict(
        first_stage=first_stage,
        note=note,
        multi_branch=multi_branch,
        force=force)
    if target is None:

        def decorate(cls):
            register_layer_scheme(cls, rules, **options)
            return cls

        return decorate
    if isinstance(target, tuple):
        return [register_layer_scheme(t, rules, **options) for t in target]
    if not isinstance(target, (type, str)):
        raise TypeError(f'register_layer_scheme: {target!r} is neither a '
                        "class nor a 'package.ClassName' string.")
    if isinstance(target, str) and '.' not in target.strip('.'):
        raise ValueError(
            f'register_layer_scheme({target!r}): a string target is '
            "'package.ClassName' (e.g. 'mmdet.ResNet') or the class's full "
            "dotted path; a bare class name would match any package's.")
    name = target if isinstance(target, str) else scheme_key(target)
    if target in _SCHEMES and not force:
        raise KeyError(f'a layer scheme for {name} is already registered; '
                       'pass force=True to replace it.')
    _SCHEMES[target] = LayerScheme(name, rules, first_stage, note,
                                   multi_branch)
    return _SCHEMES[target]


def find_scheme(cls: type) -> Optional[LayerScheme]:
    """The scheme of ``cls`` or of its nearest base class that has one.

    A class matches a scheme registered under the class itself, under
    ``'package.ClassName'`` or under its full dotted path
    (``'package.module.ClassName'``).
    """
    for klass in cls.__mro__:
        scheme = (
            _SCHEMES.get(klass) or _SCHEMES.get(scheme_key(klass))
            or _SCHEMES.get(f'{klass.__module__}.{klass.__qualname__}'))
        if scheme is not None:
            return scheme
    return None


def registered_schemes() -> Dict[Union[type, str], LayerScheme]:
    """Every registered scheme (a copy), for the docs and tests."""
    return dict(_SCHEMES)
