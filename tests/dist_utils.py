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
    return _replicas(out, work_dir, nproc)


def _replicas(out, work_dir, nproc):
    """The ranks' dumps of a launch that must have succeeded."""
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return [
        torch.load(
            osp.join(work_dir, f'replica_rank{r}.pth'), weights_only=False)
        for r in range(nproc)
    ]


#: a stand-in for Slurm's ``srun`` on one machine: it starts
#: ``--ntasks`` copies of the command with the variables Slurm gives each
#: task, and fails if any fails (``--kill-on-bad-exit``); it records the
#: options it was given in $SRUN_LOG
FAKE_SRUN = r'''#!/usr/bin/env bash
echo "$@" > "$SRUN_LOG"
ntasks=1
while [ $# -gt 0 ]; do
  case "$1" in
    -p) shift 2 ;;
    --ntasks=*) ntasks=${1#--ntasks=}; shift ;;
    -*) shift ;;
    *) break ;;
  esac
done
pids=()
for ((i = 0; i < ntasks; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks \
  SLURM_NODELIST=localhost "$@" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
'''


def slurm_train(config, work_dir, ntasks, *args, tmp):
    """tools/slurm_train.sh on this machine, through :data:`FAKE_SRUN`
    (GRES= : nodes without GPU); returns the ranks' dumps and the srun
    options."""
    bin_dir = osp.join(str(tmp), 'bin')
    os.makedirs(bin_dir, exist_ok=True)
    srun = osp.join(bin_dir, 'srun')
    with open(srun, 'w') as f:
        f.write(FAKE_SRUN)
    os.chmod(srun, 0o755)
    env = dict(
        os.environ,
        PATH=bin_dir + os.pathsep + os.environ['PATH'],
        PYTHON=sys.executable,
        GPUS=str(ntasks),
        GPUS_PER_NODE=str(ntasks),
        GRES='',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(_free_port()),
        SRUN_LOG=osp.join(str(tmp), 'srun.log'),
        PYTHONPATH=os.pathsep.join([TESTS,
                                    os.environ.get('PYTHONPATH', '')]),
        OMP_NUM_THREADS='1')
    out = subprocess.run([
        'bash',
        osp.join(ROOT, 'tools', 'slurm_train.sh'), 'cpu', 'olor',
        str(config),
        str(work_dir), *args
    ],
                         cwd=ROOT,
                         env=env,
                         capture_output=True,
                         text=True,
                         timeout=300)
    replicas = _replicas(out, work_dir, ntasks)
    with open(env['SRUN_LOG']) as f:
        return replicas, f.read()
