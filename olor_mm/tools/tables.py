"""The Markdown tables the tools and benchmarks write (one style)."""
from typing import Sequence

from tabulate import tabulate


def markdown_table(rows, header: Sequence[str], align: str) -> str:
    """A GitHub Markdown table of cells formatted by the caller; ``align``:
    a letter per column, ``l`` (text) or ``r`` (numbers)."""
    return tabulate(
        rows,
        headers=header,
        tablefmt='github',
        disable_numparse=True,
        colalign=[dict(l='left', r='right')[a] for a in align])
