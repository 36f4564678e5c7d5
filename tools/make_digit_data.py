"""The command line of :mod:`olor_mm_tools.digit_data` (its docstring and
``--help`` say what it does)."""
from olor_mm_tools.digit_data import main

if __name__ == '__main__':
    main()
