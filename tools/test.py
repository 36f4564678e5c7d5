"""The command line of ``python -m olor_mm.tools.test``
(the installed tool: its docstring and ``--help`` say what it does)."""
from olor_mm.tools.test import main

if __name__ == '__main__':
    main()
