"""The table of OLOR's layers: what the constructor logs and
``tools/analysis_tools/print_layers.py`` prints.

One row per pretrained layer ``i``: ``lam_i`` (Eq. 8/9), its trainable
tensors and parameters (a layer with an lr of 0 keeps its place with 0
tensors), the first and last parameter name, and the source of its
numbering (:mod:`olor_mm.layers.numbering`); a frozen layer (every tensor
``requires_grad=False``, e.g. ``frozen_stages``) takes no depth and is
listed where it sits as ``frozen``; then one line of totals.

This module imports nothing of MMEngine.
"""
from typing import List, Optional, Sequence, Set

import torch.nn as nn
from tabulate import tabulate

from .numbering import LayerNumbering


def layer_table(model: nn.Module,
                numbering: LayerNumbering,
                lams: Sequence[float],
                frozen: Optional[Set[int]] = None) -> str:
    """The table of ``numbering`` on ``model`` with ``lam_i = lams[i]``;
    ``frozen``: ids of tensors that never move although trainable (an lr of
    0), counted with the frozen ones."""
    frozen = frozen or set()
    params = dict(model.named_parameters(remove_duplicate=False))
    rows: List[List[str]] = [[] for _ in range(numbering.count)]
    for name, i in numbering.layer_of.items():
        rows[i].append(name)
    header = ('layer', 'lam_i', 'tensors', 'params', 'first parameter',
              'last parameter', 'source')
    lines, rolled, seen = [], [0, 0], set()
    stiff = {}
    for position, names, source in numbering.frozen:
        stiff.setdefault(position, []).append(
            ('-', 'frozen', '0', '0', names[0], names[-1], source))
    for i, names in enumerate(rows):
        lines += stiff.pop(i, [])
        trainable = []
        for n in names:  # a tied tensor counts once
            p = params[n]
            if p.requires_grad and id(p) not in frozen and id(p) not in seen:
                seen.add(id(p))
                trainable.append(p)
        count = sum(p.numel() for p in trainable)
        if lams[i] > 0:
            rolled[0] += len(trainable)
            rolled[1] += count
        lines.append((str(i), f'{lams[i]:.6f}', str(len(trainable)),
                      f'{count:,}', names[0], names[-1], numbering.sources[i]))
    for after in stiff.values():
        lines += after
    # the cells are formatted above: no number parsing; numbers right-aligned
    table = tabulate(
        lines,
        headers=header,
        tablefmt='plain',
        disable_numparse=True,
        colalign=('right', ) * 4 + ('left', ) * 3)
    return '\n'.join([line.rstrip() for line in table.splitlines()] + [
        f'OLOR rolls back {rolled[1]:,} parameters in {rolled[0]} tensors; '
        f'{numbering.count} pretrained layers' +
        (f'; {len(numbering.frozen)} frozen layers take no depth.'
         if numbering.frozen else '.')
    ])
