"""The command line of ``python -m olor_mm.tools.publish_model``
(the installed tool: its docstring and ``--help`` say what it does)."""
import sys

from olor_mm.tools.publish_model import main

if __name__ == '__main__':
    sys.exit(main())
