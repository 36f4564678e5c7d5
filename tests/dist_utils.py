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


def dist_train(config, work_dir, nproc, *args, expect_ok=True):
    """tools/dist_train.sh CONFIG NPROC --work-dir WORK_DIR ARGS...; the
    ranks' dumps (or, with ``expect_ok=False``, the output of a run that
    must fail). DeepSpeed runs on its CPU accelerator where no GPU is."""
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT=str(_free_port()),
        PYTHONPATH=TESTS + os.pathsep + os.environ.get('PYTHONPATH', ''),
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


