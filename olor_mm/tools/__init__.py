"""olor-mm's command-line tools, installed with the package.

Each runs on the user's own configs, from any directory, with or without
a checkout of the repository: ``python -m olor_mm.tools.<tool> --help``.

==============  ===========================================================
train           MMDetection's ``tools/train.py`` command line (mmdet and
                mmseg configs), with olor-mm's resume checks
test            MMDetection's ``tools/test.py``
print_layers    OLOR's layer table of a config (layers, lam_i), no training
smoke_train     a config's model, optimizer and rollback trained a few
                iterations on generated data in the config's own layout
forgetting      how much each fine-tuning method forgets, for any pair of
                configs (``--plan``: the runs and their time, first)
publish_model   a checkpoint reduced to its weights, named as MMDetection's
plot_drift      the drift RollbackDriftHook logged, per stage
wise_ft         WiSE-FT: a weight-space interpolation of two checkpoints
==============  ===========================================================

What they share: :mod:`.config_input` (a config as the check tools take
it: ``pkg::`` names, AMP configs on the CPU, errors in one line),
:mod:`.experiment` (configs, training, evaluation of a checkpoint),
:mod:`.forgetting_runs` (resumable fine-tunings and their retention),
:mod:`.forgetting_plan` (``forgetting --plan``), :mod:`.fronts` (Pareto
fronts, hypervolumes),
:mod:`.pretrained` (a config's model, stand-in pretrained weights),
:mod:`.upstream_layouts` and :mod:`.drawing` (generated data in the
upstream datasets' layouts), :mod:`.progress`, :mod:`.tables`.

The repository's ``tools/X.py`` scripts are these modules' command lines
too; what only its demo and benchmarks need lives beside them in
``tools/olor_mm_tools`` and is not installed.
"""
