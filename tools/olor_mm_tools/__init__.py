"""What only the repository's demo, quick start, benchmarks and tests
share; not installed (the tools users run are :mod:`olor_mm.tools`):

- data: :mod:`.demo_data` (the demo's shapes sets), :mod:`.digit_data`
  (the forgetting benchmark's digits);
- runs: :mod:`.clocks` (iteration, step and rollback times),
  :mod:`.forgetting_experiment` (the forgetting benchmark's settings,
  methods and jobs);
- reports: :mod:`.forgetting_report` (the benchmark's tables and plots).

The scripts of ``tools/`` import it from beside them (``tools/`` is their
``sys.path[0]``); ``benchmarks/`` and ``tests/`` put ``tools/`` on the path.
"""
