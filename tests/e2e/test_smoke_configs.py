"""Every shipped headline config trains: tools/smoke_train.py on each.

Each config runs through ``tools/smoke_train.py`` (generated data in its
upstream layout, a local stand-in of its pretrained checkpoint loaded by its
own ``init_cfg`` / ``load_from``, two training iterations at a quarter of
the image scale, with and without rollback, a resume, and ``tools/test.py``'s
evaluation). The runs go two at a time, one thread each (about 1.7 times
the throughput of one two-thread run on two cores).
"""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from paths import ROOT

CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', 'mmdet', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'mmseg', '*.py')))
CHECKS = ('data', 'pretrained', 'losses', 'theta0', 'rollback', 'checkpoint',
          'resume', 'evaluate')


def _name(path):
    return osp.splitext(osp.basename(path))[0]


@pytest.fixture(scope='module')
def smoke_runs(tmp_path_factory):
    """{config name: (return code, output)} of every smoke run."""
    root = tmp_path_factory.mktemp('smoke')
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')

    def run(path):
        out = subprocess.run([
            sys.executable,
            osp.join(ROOT, 'tools', 'smoke_train.py'), path, '--work-dir',
            str(root / _name(path)), '--iters', '2'
        ],
                             cwd=ROOT,
                             env=env,
                             capture_output=True,
                             text=True,
                             timeout=900)
        if out.returncode == 0:  # 1-2.5 GB of checkpoints; the output is
            shutil.rmtree(root / _name(path))  # all the tests read
        return _name(path), (out.returncode, out.stdout + out.stderr)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, CONFIGS))


def test_every_headline_config_is_covered():
    names = {_name(p) for p in CONFIGS}
    assert len(names) == 11  # 5 mmdet COCO, 5 mmseg, the custom fine-tune
    assert 'mask-rcnn_r50_fpn_olor_custom-finetune' in names


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_config_trains_rolls_back_resumes_and_evaluates(path, smoke_runs):
    code, output = smoke_runs[_name(path)]
    lines = {
        line.split()[1]: line
        for line in output.splitlines() if line.startswith(('PASS ', 'FAIL '))
    }
    assert code == 0 and set(lines) == set(CHECKS), output[-4000:]
    assert all(line.startswith('PASS') for line in lines.values()), output
    # theta0 is the checkpoint's, every rolled-back tensor of it
    theta0 = lines['theta0'].split()
    assert theta0[2] == theta0[4] and int(theta0[2]) > 0, lines['theta0']
