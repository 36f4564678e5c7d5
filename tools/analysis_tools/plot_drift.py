"""The command line of ``python -m olor_mm.tools.plot_drift``
(the installed tool: its docstring and ``--help`` say what it does)."""
import sys

from olor_mm.tools.plot_drift import main

if __name__ == '__main__':
    sys.exit(main())
