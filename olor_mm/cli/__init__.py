"""What olor-mm's ``tools/train.py`` and ``tools/test.py`` share
(:mod:`.common`: config loading, ``--amp``, ``--resume``, the runner; its
checkpoint hook, :mod:`.safe_checkpoint`) and what ``tools/test.py``'s
flags do to a config per scope (:mod:`.eval_flags`). Needs MMEngine."""
from .common import (CfgOptions, add_common_arguments, build_runner,
                     check_launcher, complete, enable_amp, evaluate,
                     latest_checkpoint, load_config, parse_with_local_rank,
                     resume_options)
from .eval_flags import enable_show, enable_tta, set_out

__all__ = [
    'CfgOptions', 'add_common_arguments', 'build_runner', 'check_launcher',
    'complete', 'enable_amp', 'evaluate', 'latest_checkpoint', 'load_config',
    'parse_with_local_rank', 'resume_options', 'enable_show', 'enable_tta',
    'set_out'
]
