"""Config handling shared by the command-line tools (tools/train.py, ...)."""
import os.path as osp

from mmengine.config import Config

from .compat import cpu_ddp_model_wrapper_cfg

#: --amp maps each fp32 wrapper to its mixed-precision twin.
AMP_TWINS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'OLOROptimWrapper': 'AmpOLOROptimWrapper',
    'L2SPOptimWrapper': 'AmpL2SPOptimWrapper',
}


def enable_amp(cfg: Config) -> None:
    """Switch ``cfg.optim_wrapper`` to mixed precision, as ``--amp`` does.

    ``OLOROptimWrapper`` becomes ``AmpOLOROptimWrapper`` and
    ``L2SPOptimWrapper`` ``AmpL2SPOptimWrapper`` (both also run on the CPU,
    in bfloat16), and ``OptimWrapper`` MMEngine's
    ``AmpOptimWrapper``, which needs a GPU: without one this raises rather
    than train silently in float32.

    Raises:
        ValueError: for a wrapper type with no mixed-precision twin.
        RuntimeError: for a plain OptimWrapper on a machine without GPU.
    """
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind in AMP_TWINS.values():
        return
    if kind not in AMP_TWINS:
        raise ValueError(
            f'--amp: optim_wrapper.type={kind!r} has no mixed-precision '
            f'twin; use one of {sorted(AMP_TWINS)} or set the AMP wrapper '
            'type in the config.')
    if kind == 'OptimWrapper':
        from mmengine.device import get_device
        if get_device() == 'cpu':
            raise RuntimeError(
                '--amp without a GPU: MMEngine\'s AmpOptimWrapper needs '
                'CUDA/NPU/MLU. Train without --amp, or use '
                "optim_wrapper.type='OLOROptimWrapper' (whose AMP twin runs "
                'in bfloat16 on the CPU).')
    wrapper.type = AMP_TWINS[kind]
    wrapper.loss_scale = 'dynamic'


def load_config(args) -> Config:
    """The config of ``args.config`` with the common command-line edits.

    ``--cfg-options`` are merged, ``--launcher`` is set (on a machine
    without GPU, DDP then gets ``device_ids=None``:
    :func:`olor_mm.compat.cpu_ddp_model_wrapper_cfg`), and ``work_dir`` is
    ``--work-dir``, else the config's, else ``./work_dirs/<config name>``
    (MMDetection's order).
    """
    cfg = Config.fromfile(args.config)
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
    """MMEngine's Runner, or the config's ``runner_type`` from RUNNERS."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


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
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
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
    import os
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args
