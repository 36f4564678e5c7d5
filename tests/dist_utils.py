"""Launching the training processes of the distributed tests: olor-mm's
``tools/dist_train.sh`` (torchrun, ``tools/train.py --launcher pytorch``),
each rank writing its weights and theta0 (``dist_probe.DumpReplicaHook``)."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch
from e2e_utils import ROOT

TESTS = osp.dirname(osp.abspath(__file__))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


#: where `make setup` installs DeepSpeed, beside the venv
#: (requirements/deepspeed.txt says why)
DEEPSPEED = osp.join(sys.prefix, 'deepspeed')


def deepspeed_missing():
    """Why the DeepSpeed tests cannot run here, or None."""
    if not osp.isfile(osp.join(DEEPSPEED, 'deepspeed', '__init__.py')):
        return (f'DeepSpeed is not installed in {DEEPSPEED} (make setup '
                'installs it there: requirements/deepspeed.txt)')
    return None


def dist_train(config,
               work_dir,
               nproc,
               *args,
               expect_ok=True,
               deepspeed=False):
    """tools/dist_train.sh CONFIG NPROC --work-dir WORK_DIR ARGS...; the
    ranks' dumps (or, with ``expect_ok=False``, the output of a run that
    must fail). ``deepspeed``: the processes see DeepSpeed (on its CPU
    accelerator where no GPU is)."""
    path = [TESTS] + ([DEEPSPEED] if deepspeed else [])
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT=str(_free_port()),
        PYTHONPATH=os.pathsep.join(path + [os.environ.get('PYTHONPATH', '')]),
        OMP_NUM_THREADS='1')
    if not torch.cuda.is_available():
        env.setdefault('DS_ACCELERATOR', 'cpu')
    out = subprocess.run([
        'bash',
        osp.join(ROOT, 'tools', 'dist_train.sh'),
        str(config),
        str(nproc), '--work-dir',
        str(work_dir), *args
    ],
                         cwd=ROOT,
                         env=env,
                         capture_output=True,
                         text=True,
                         timeout=300)
    if not expect_ok:
        assert out.returncode != 0
        return out.stdout + out.stderr
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return [
        torch.load(
            osp.join(work_dir, f'replica_rank{r}.pth'), weights_only=False)
        for r in range(nproc)
    ]
