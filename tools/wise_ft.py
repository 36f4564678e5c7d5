"""The command line of :mod:`olor_mm_tools.wise_ft` (its docstring and
``--help`` say what it does)."""
from olor_mm_tools.wise_ft import main

if __name__ == '__main__':
    main()
