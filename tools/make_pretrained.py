"""The command line of :mod:`olor_mm.tools.pretrained` (its docstring and
``--help`` say what it does)."""
from olor_mm.tools.pretrained import main

if __name__ == '__main__':
    main()
