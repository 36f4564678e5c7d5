"""Config handling shared by the command-line tools (tools/train.py, ...)."""
import glob
import os
import os.path as osp
import re
import zipfile

from mmengine.config import Config, DictAction
from mmengine.device import get_device
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..compat import cpu_ddp_model_wrapper_cfg
from ..engine import deprecations
from ..engine.hooks import (RollbackDriftHook, warn_if_unresumable,
                            weights_only_refusal)
from .safe_checkpoint import use_safe_checkpoints

#: --amp maps each fp32 wrapper to its mixed-precision twin.
AMP_TWINS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'OLOROptimWrapper': 'AmpOLOROptimWrapper',
}


def enable_amp(cfg: Config) -> None:
    """Switch ``cfg.optim_wrapper`` to mixed precision, as ``--amp`` does.

    ``OptimWrapper`` becomes MMEngine's ``AmpOptimWrapper`` where there is
    a GPU (it rolls back too: the constructor attached the rollback to the
    optimizer). Without one, AmpOptimWrapper cannot be built, so an olor-mm
    config (``constructor='LayerwiseRollbackConstructor'``, any method)
    gets ``AmpOLOROptimWrapper``, which runs in bfloat16 on the CPU; so does
    ``OLOROptimWrapper`` (the alias) anywhere. A deprecated wrapper type
    (``L2SPOptimWrapper`` ...) is first rewritten to its current spelling.
    A plain ``OptimWrapper`` of a config without the constructor on a
    CPU-only machine raises rather than train silently in float32.

    Raises:
        ValueError: for a wrapper type with no mixed-precision twin.
        RuntimeError: for a plain OptimWrapper without the OLOR constructor
            on a machine without GPU.
    """
    wrapper = cfg.optim_wrapper
    if wrapper.get('type') in deprecations.DEPRECATED_TYPES:
        current, paramwise = deprecations.translate(
            wrapper.to_dict() if hasattr(wrapper, 'to_dict') else wrapper,
            wrapper.get('paramwise_cfg') or {})
        current['paramwise_cfg'] = paramwise
        cfg.optim_wrapper = current
        wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind in AMP_TWINS.values():
        return
    if kind not in AMP_TWINS:
        raise ValueError(
            f'--amp: optim_wrapper.type={kind!r} has no mixed-precision '
            f'twin; use one of {sorted(AMP_TWINS)} or set the AMP wrapper '
            'type in the config.')
    twin = AMP_TWINS[kind]
    if kind == 'OptimWrapper' and get_device() == 'cpu':
        if wrapper.get('constructor') != 'LayerwiseRollbackConstructor':
            raise RuntimeError(
                '--amp without a GPU: MMEngine\'s AmpOptimWrapper needs '
                'CUDA/NPU/MLU. Train without --amp, or on a GPU; an OLOR '
                "config (constructor='LayerwiseRollbackConstructor') runs "
                'in bfloat16 on the CPU.')
        twin = 'AmpOLOROptimWrapper'
    wrapper.type = twin
    wrapper.loss_scale = 'dynamic'


def complete(path: str) -> bool:
    """Whether a checkpoint was written to its end (torch saves a zip
    archive, whose directory comes last: a truncated file has none). A
    folder (FSDP's per-rank files, DeepSpeed's checkpoint) is complete when
    it holds files and each torch file in it is."""
    if osp.isdir(path):
        files = glob.glob(osp.join(path, '*.pt*'))
        return bool(files) and all(zipfile.is_zipfile(f) for f in files)
    return osp.isfile(path) and zipfile.is_zipfile(path)


def latest_checkpoint(work_dir: str):
    """The checkpoint ``--resume`` continues from, or None for none yet.

    MMEngine's ``last_checkpoint`` file names it.

    Raises:
        FileNotFoundError: when ``last_checkpoint`` is empty or names a
            missing or incomplete file, naming the newest complete
            ``iter_N.pth`` / ``epoch_N.pth`` of the work dir to resume
            from instead.
    """
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        return None
    with open(last) as f:
        named = f.read().strip()
    if named and complete(named):
        return named
    found = sorted(
        (int(m.group(2)), path)
        for path in glob.glob(osp.join(work_dir, '*_*.pth'))
        for m in [re.match(r'(iter|epoch)_(\d+)\.pth$', osp.basename(path))]
        if m and complete(path))
    instead = (f'the newest complete checkpoint there is {found[-1][1]}: '
               f'resume it with --resume {found[-1][1]}'
               if found else 'no complete checkpoint is there: start anew '
               '(without --resume)')
    state = 'is empty' if not named else (
        f'names {named}, which ' +
        ('is incomplete' if osp.exists(named) else 'does not exist'))
    raise FileNotFoundError(f'--resume: {last} {state}; {instead}.')


#: state keys of olor-mm's anchors in a saved optimizer state
ANCHOR_KEYS = ('olor_rollback', 'l2sp_anchor', 'ewc_anchor')


def peek_checkpoint(path: str) -> dict:
    """A checkpoint's structure without reading its tensors (memory-mapped,
    weights-only with MMEngine's globals); FSDP's folder of per-rank files
    is read through ``rank0.pth``."""
    import torch

    from ..compat.checkpoint import mmengine_safe_globals
    if osp.isdir(path):
        path = osp.join(path, 'rank0.pth')
    with torch.serialization.safe_globals(mmengine_safe_globals()):
        return torch.load(
            path, map_location='cpu', mmap=True, weights_only=True)


def run_id(checkpoint: dict):
    """The id of the fine-tune that wrote ``checkpoint`` (its anchor's), or
    None (no olor-mm anchor, or written by olor-mm 0.2 or earlier)."""
    optimizer = checkpoint.get('optimizer') or {}
    for key in ANCHOR_KEYS:
        entry = optimizer.get(key)
        if isinstance(entry, dict) and entry.get('run_id'):
            return entry['run_id']
    return None


def check_resumable(path: str) -> None:
    """Refuse, before any runner is built, a checkpoint ``--resume`` cannot
    continue: a weights-only file (published, or the pretrained one),
    with the way to use it instead.

    Raises:
        ValueError: naming the file, what it lacks and the fix.
    """
    try:
        checkpoint = peek_checkpoint(path)
    except Exception:  # damaged: MMEngine's load names the cause
        return
    lacks = [k for k in ('meta', 'message_hub') if k not in checkpoint]
    if lacks:
        raise ValueError('--resume: ' + weights_only_refusal(path, lacks))
    if 'optimizer' not in checkpoint:
        print(
            f'--resume {path}: it holds no optimizer state (written with '
            'checkpoint save_optimizer=False), so an anchored fine-tune '
            '(OLOR, L2-SP, EWC) cannot restore theta0 from it and will '
            'refuse to resume.',
            flush=True)


def other_runs(work_dir: str, latest: str) -> str:
    """A warning when the checkpoints of ``work_dir`` were written by more
    than one fine-tune (their anchors' run ids), naming the one ``latest``
    belongs to; '' when they agree."""
    found = []
    for path in glob.glob(osp.join(work_dir, '*_*.pth')):
        m = re.match(r'(iter|epoch)_(\d+)\.pth$', osp.basename(path))
        if m:
            try:
                found.append(
                    (int(m.group(2)), path, run_id(peek_checkpoint(path))))
            except Exception:
                continue
    ids = {rid for _, _, rid in found if rid}
    if len(ids) < 2:
        return ''
    mine = next((rid for _, path, rid in found
                 if osp.abspath(path) == osp.abspath(latest)), None)
    runs = ', '.join(
        f'{rid} ({", ".join(osp.basename(p) for _, p, r in sorted(found) if r == rid)})'  # noqa: E501
        for rid in sorted(ids))
    return (f'WARNING: {work_dir} holds checkpoints of {len(ids)} '
            f'fine-tunes (run ids: {runs}): two runs share this work dir. '
            f'--resume takes {osp.basename(latest)}, of run {mine}; give '
            'each run its own --work-dir, or choose with --resume PATH.')


def resume_options(cfg: Config, resume) -> str:
    """Set ``cfg.resume`` / ``cfg.load_from`` for ``--resume [PATH]``;
    returns the line to print.

    ``--resume`` alone (or ``--resume WORK_DIR``) continues from the work
    dir's latest checkpoint; with none yet (a requeue script's first
    launch) the run starts as a new fine-tune from ``load_from``, which
    stays (MMDetection's script clears it, and theta0 would be the random
    initialisation). A weights-only file is refused
    (:func:`check_resumable`); checkpoints of two fine-tunes in one work dir
    are said (:func:`other_runs`).
    """
    if resume is None:
        return ''
    work_dir = cfg.work_dir
    if resume != 'auto' and osp.isfile(osp.join(resume, 'last_checkpoint')):
        work_dir, resume = resume, 'auto'  # --resume WORK_DIR
    if resume != 'auto':
        if not osp.exists(resume):
            raise FileNotFoundError(f'--resume: {resume} does not exist.')
        check_resumable(resume)
        cfg.resume, cfg.load_from = True, resume
        return f'--resume: from {resume}'
    latest = latest_checkpoint(work_dir)
    if latest is not None:
        check_resumable(latest)
        cfg.resume, cfg.load_from = True, latest
        note = f'--resume: from {latest}, the latest in {work_dir}'
        warning = other_runs(work_dir, latest)
        return note + ('\n' + warning if warning else '')
    cfg.resume = False
    return (f'--resume: nothing to resume in {work_dir} yet: a new '
            f'fine-tune from load_from={cfg.get("load_from")}')


class CfgOptions(DictAction):
    """MMEngine's ``DictAction``, with a message for ``key`` without
    ``=value``."""

    def __call__(self, parser, namespace, values, option_string=None):
        bad = [v for v in values if '=' not in v]
        if bad:
            parser.error(f'{option_string}: {bad[0]!r} has no "=": write '
                         'key=value, e.g. '
                         'optim_wrapper.paramwise_cfg.rollback_max=0.02')
        super().__call__(parser, namespace, values, option_string)


def check_launcher(parser, launcher: str) -> None:
    """``--launcher pytorch`` needs torchrun's environment."""
    if launcher == 'pytorch' and 'RANK' not in os.environ:
        parser.error('--launcher pytorch needs the processes torchrun '
                     'starts (it sets RANK, LOCAL_RANK and WORLD_SIZE): run '
                     'tools/dist_train.sh CONFIG GPUS [args], or leave '
                     '--launcher out for one process.')


def resolve_config(path: str) -> str:
    """A config file, or an installed package's config named as in
    ``_base_`` (``mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py``,
    ``olor_mm::demo/...``) resolved to its file."""
    if '::' in path:
        return Config._get_cfg_path(path, '')[0]
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config file {path} does not exist (working directory '
            f"{os.getcwd()}; an installed package's config is named as in "
            '_base_: mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py).')
    return path


def load_config(args) -> Config:
    """The config of ``args.config`` (a file or ``pkg::path``) with the
    common command-line edits.

    ``--cfg-options`` are merged, ``--launcher`` is set (on a machine
    without GPU, DDP then gets ``device_ids=None``:
    :func:`olor_mm.compat.cpu_ddp_model_wrapper_cfg`), and ``work_dir`` is
    ``--work-dir``, else the config's, else ``./work_dirs/<config name>``
    (MMDetection's order).
    """
    cfg = Config.fromfile(resolve_config(args.config))
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cpu_ddp_model_wrapper_cfg(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg: Config):
    """MMEngine's Runner, or the config's ``runner_type`` from RUNNERS,
    whose checkpoints a kill never loses
    (:class:`~olor_mm.cli.safe_checkpoint.SafeCheckpointHook`)."""
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    use_safe_checkpoints(runner, cfg)
    wrapper = cfg.get('optim_wrapper') or {}
    if not any(isinstance(h, RollbackDriftHook) for h in runner.hooks):
        warn_if_unresumable(
            runner,
            wrapper.get('constructor') == 'LayerwiseRollbackConstructor')
    return runner


def evaluate(cfg: Config, checkpoint: str) -> dict:
    """``runner.test()`` of ``checkpoint`` under ``cfg``: its metrics.

    What ``tools/test.py`` runs (the config's ``test_dataloader`` and
    ``test_evaluator``); returns the metrics dict.
    """
    cfg.load_from = checkpoint
    return build_runner(cfg).test()


def add_common_arguments(parser, work_dir_help: str) -> None:
    """The arguments tools/train.py and tools/test.py share (MMDetection's).

    ``--work-dir``, ``--cfg-options``, ``--launcher`` and ``--local-rank``
    (which torch.distributed.launch passes).
    """
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptions,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_with_local_rank(parser, argv=None):
    """``parser.parse_args`` that exports ``LOCAL_RANK`` as the tools do."""
    args = parser.parse_args(argv)
    check_launcher(parser, args.launcher)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args
