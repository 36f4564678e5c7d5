"""The command line of :mod:`olor_mm_tools.smoke` (its docstring and
``--help`` say what it does)."""
import sys

from olor_mm_tools.smoke import main

if __name__ == '__main__':
    sys.exit(main())
