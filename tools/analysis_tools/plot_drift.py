"""The command line of :mod:`olor_mm_tools.drift_plot` (its docstring and
``--help`` say what it does)."""
from olor_mm_tools.drift_plot import main

if __name__ == '__main__':
    main()
