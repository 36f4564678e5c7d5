"""The command line of ``python -m olor_mm.tools.print_layers``
(the installed tool: its docstring and ``--help`` say what it does)."""
import sys

from olor_mm.tools.print_layers import main

if __name__ == '__main__':
    sys.exit(main())
