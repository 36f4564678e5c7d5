"""Layers found from a module's structure, for backbones nobody declared.

The last source of OLOR's layer numbering (after ``layer_patterns``, a
registered scheme and timm's ``group_matcher``; see
:mod:`olor_mm.layers.numbering`). It finds the model's *repeated blocks*
and makes each one layer, in order:

- a **block** is an element of an ``nn.ModuleList`` / ``nn.Sequential``
  (or a subclass, e.g. MMDetection's ``ResLayer``) whose kind occurs as
  such an element at least twice in the module (the residual blocks of a
  ResNet stage, the transformer blocks of a ViT, the inverted residuals of a
  MobileNet, also when a stage holds a single one) and that holds at least
  two weight layers (convolutions or linear maps): a conv + norm +
  activation unit (mmcv's ``ConvModule``) is an operation, not a block. An
  element's kind is its class, or for a container the classes of its
  children. A module with no such block at all (a VGG-style stack of
  convolutions) takes its repeated single operations as blocks instead;
- an element that holds blocks (a Swin stage, a stage of a pyramid ViT) is
  opened recursively: its blocks are layers, the rest keeps its place
  around them;
- the other parameters keep their place: each maximal run of them between
  blocks, within one module, is one layer (the stem, a stage's patch
  embedding or downsampling, a final norm);
- a sub-module that declares its own numbering (a registered scheme, a timm
  model's ``group_matcher``) is numbered by it, in its place.

Order is registration order, which is forward order for modules written in
the usual way. A container's elements are taken as consecutive (as in a
``Sequential``); multi-branch networks, whose branches run side by side,
need a declared scheme (MMDetection's and MMSegmentation's have one).

The *stage* of a parameter (the coarse view: drift groups, stage-wise lr
decay) comes from the same walk: the stages are the block-holding children
of the first module, from the top, that has more than one of them (a
ResNet's ``layer1`` ... ``layer4``, a Swin's ``stages.0`` ... ``stages.3``);
parameters before the first stage are the ``stem``, after the last the
``top``, and those between two stages belong to the stage before them.

This module imports nothing of MMEngine.
"""
from collections import Counter
from typing import Callable, Dict, List, Optional, Set, Tuple

import torch.nn as nn

#: a sub-module's own numbering: ``(units, stages, source)`` or None
Declared = Callable[[nn.Module], Optional[tuple]]


def is_container(module: nn.Module) -> bool:
    """``nn.ModuleList`` / ``nn.Sequential`` and their subclasses."""
    return isinstance(module, (nn.ModuleList, nn.Sequential))


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _elements(module: nn.Module) -> List[Tuple[str, nn.Module]]:
    return [(n, c) for n, c in module.named_children() if _has_params(c)]


#: leaf modules that are weight layers whatever their weights' shape (FSDP
#: turns each rank's weights into 1-D slices)
WEIGHT_LAYERS = (nn.modules.conv._ConvNd, nn.Linear, nn.Bilinear)


def weight_layers(module: nn.Module) -> int:
    """Leaf modules that are convolutions or linear maps (or hold another
    weight of two or more dimensions)."""
    count = 0
    for m in module.modules():
        if next(m.children(), None) is not None:
            continue
        weight = getattr(m, 'weight', None)
        if isinstance(m, WEIGHT_LAYERS) or (isinstance(weight, nn.Parameter)
                                            and weight.dim() >= 2):
            count += 1
    return count


def kind(module: nn.Module):
    """What makes two container elements the same kind of block."""
    if is_container(module):
        return ('container', ) + tuple(type(c) for c in module.children())
    return type(module)


class BlockFinder:
    """The blocks of one module and the walk that turns them into layers.

    Args:
        module: The module to number.
        declared: ``declared(sub)`` returns a sub-module's own numbering
            (see :mod:`olor_mm.layers.numbering`), or None.
    """

    def __init__(self, module: nn.Module, declared: Optional[Declared] = None):
        self.module = module
        self.declared = declared or (lambda m: None)
        self._weights: Dict[int, int] = {}
        self._holds: Dict[int, bool] = {}
        self._declared: Dict[int, Optional[tuple]] = {}
        elements = [
            e for m in module.modules() if is_container(m)
            for _, e in _elements(m)
        ]
        #: the weight layers a block holds at least: 2, or 1 for a module
        #: without blocks (its repeated single operations are the blocks)
        self.min_weights = 2
        self.block_kinds = self._repeated(elements, 2)
        if not self.block_kinds:
            self.min_weights = 1
            self.block_kinds = self._repeated(elements, 1)

    def _weight_layers(self, module: nn.Module) -> int:
        if id(module) not in self._weights:
            self._weights[id(module)] = weight_layers(module)
        return self._weights[id(module)]

    def _repeated(self, elements, least: int) -> Set:
        counts: Counter = Counter(
            kind(e) for e in elements if self._weight_layers(e) >= least)
        return {k for k, n in counts.items() if n >= 2}

    # ---------------------------------------------------------- predicates
    def is_block(self, parent: nn.Module, child: nn.Module) -> bool:
        """Whether ``child``, a child of ``parent``, is a repeated block."""
        return (is_container(parent) and kind(child) in self.block_kinds
                and self._weight_layers(child) >= self.min_weights)

    def own_numbering(self, module: nn.Module) -> Optional[tuple]:
        """The declared numbering of ``module`` (cached), or None."""
        if id(module) not in self._declared:
            self._declared[id(module)] = self.declared(module)
        return self._declared[id(module)]

    def holds_blocks(self, module: nn.Module) -> bool:
        """Whether a block (or a declared sub-module) lies below."""
        key = id(module)
        if key not in self._holds:
            self._holds[key] = any(
                self.is_block(module, c) or self.own_numbering(c) is not None
                or self.holds_blocks(c) for _, c in _elements(module))
        return self._holds[key]

    def blocks(self) -> List[List[str]]:
        """The parameter names of each repeated block (the innermost ones:
        a stage that holds blocks is not one), in registration order."""
        out: List[List[str]] = []

        def walk(module, path):
            for name, child in _elements(module):
                if self.is_block(module,
                                 child) and not self.holds_blocks(child):
                    out.append([
                        f'{path}{name}.{n}'
                        for n, _ in child.named_parameters()
                    ])
                else:
                    walk(child, f'{path}{name}.')

        walk(self.module, '')
        return out

    # ---------------------------------------------------------------- walk
    def units(self) -> Tuple[List[List[str]], List[str]]:
        """Layers as lists of parameter names (relative to the module, in
        registration order), and the source of each (``'blocks'`` or the
        declared sub-module's)."""
        units: List[List[str]] = []
        sources: List[str] = []

        def walk(module: nn.Module, path: str) -> None:
            run = [path + n for n, _ in module.named_parameters(recurse=False)]

            def flush():
                if run:
                    units.append(list(run))
                    sources.append('blocks')
                    run.clear()

            for name, child in _elements(module):
                prefix = f'{path}{name}.'
                own = self.own_numbering(child)
                if own is not None:
                    flush()
                    for unit in own[0]:
                        units.append([prefix + n for n in unit])
                        sources.append(own[2])
                elif self.is_block(module,
                                   child) and not self.holds_blocks(child):
                    flush()
                    units.append(
                        [prefix + n for n, _ in child.named_parameters()])
                    sources.append('blocks')
                elif self.holds_blocks(child):
                    flush()
                    walk(child, prefix)
                else:
                    run.extend(prefix + n for n, _ in child.named_parameters())
            flush()

        walk(self.module, '')
        return units, sources

    def stage_of(self) -> Dict[str, str]:
        """``{parameter name: 'stem' | 'stage<k>' | 'top'}`` (see above);
        empty when the module has no blocks (one group)."""
        module, path = self.module, ''
        while True:
            holders = [(n, c) for n, c in _elements(module)
                       if self.is_block(module, c) or self.holds_blocks(c)]
            if (len(holders) == 1 and self.holds_blocks(holders[0][1])
                    and self.own_numbering(holders[0][1]) is None):
                module, path = holders[0][1], f'{path}{holders[0][0]}.'
                continue
            break
        if not holders:
            return {}
        if not any(self.holds_blocks(c) for _, c in holders):
            stages = [path]  # the blocks themselves: one stage
        else:
            stages = [f'{path}{n}.' for n, _ in holders]
        names = [n for n, _ in self.module.named_parameters()]
        index = [
            next((k for k, p in enumerate(stages) if name.startswith(p)), None)
            for name in names
        ]
        last = max(i for i, k in enumerate(index) if k is not None)
        out, current = {}, None
        for i, (name, k) in enumerate(zip(names, index)):
            current = k if k is not None else current
            out[name] = ('stem' if current is None else
                         'top' if i > last else f'stage{current + 1}')
        return out
