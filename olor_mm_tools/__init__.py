"""What olor-mm's command-line tools (``tools/``) and benchmarks
(``benchmarks/``) share, in one importable place (the scripts themselves
are not a package):

- data: :mod:`.drawing` (shapes and their COCO annotations),
  :mod:`.demo_data`, :mod:`.upstream_layouts`, :mod:`.digit_data`;
- checkpoints: :mod:`.pretrained` (stand-in pretrained weights),
  :mod:`.wise_ft` (weight-space interpolation);
- runs: :mod:`.experiment` (configs, training, evaluation of a checkpoint),
  :mod:`.smoke` (a config reduced for a smoke training), :mod:`.clocks`
  (iteration, step and rollback times), :mod:`.forgetting_experiment`
  (the forgetting benchmark's settings, methods and jobs),
  :mod:`.forgetting_runs` (resumable fine-tunings and their retention);
- reports: :mod:`.fronts` (Pareto fronts, hypervolumes),
  :mod:`.forgetting_report` (the benchmark's tables and plots),
  :mod:`.tables` (the one Markdown table style), :mod:`.progress`,
  :mod:`.drift_plot`.

It builds on olor_mm's public API and needs a checkout of the repository
(:mod:`.forgetting_runs` runs its ``tools/train.py``). ``tools/X.py`` is
the command line of the module of the same job.
"""
