"""A run killed while it saves (olor_mm/cli/safe_checkpoint.py and
MMEngine's own order): --resume finds a complete checkpoint, a damaged file
named explicitly is refused naming the last complete one."""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from e2e_utils import TOOL_ENV, state, toy_config_file, train_tool
from paths import ROOT
from toy import adamw_checkpoints, adamw_wrapper_cfg, resumed_runner

import olor_mm

#: a slow disk: with SLOW_SAVE set, the second checkpoint's bytes are
#: written half, then the rest after SLOW_SAVE seconds
SLOW_SAVE = '''
import os
import time

from mmengine.fileio.backends import LocalBackend

_put = LocalBackend.put


def slow_put(self, obj, filepath):
    if not (os.environ.get('SLOW_SAVE') and '6.pth' in str(filepath)):
        return _put(self, obj, filepath)
    with open(filepath, 'wb') as f:
        f.write(obj[:len(obj) // 2])
        f.flush()
        time.sleep(float(os.environ['SLOW_SAVE']))
        f.write(obj[len(obj) // 2:])


LocalBackend.put = slow_put
'''


def test_a_kill_while_saving_leaves_a_checkpoint_resume_finds(tmp_path):
    """max_keep_ckpts=1, the run killed while it writes its second
    checkpoint (a slow disk): last_checkpoint names a complete file, and
    --resume continues to the same weights as a run never killed."""
    (tmp_path / 'mods').mkdir()  # not beside the config file toy.py
    (tmp_path / 'mods' / 'slow_save.py').write_text(SLOW_SAVE)
    config, _ = toy_config_file(
        tmp_path,
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(
                type='CheckpointHook',
                interval=3,
                by_epoch=False,
                max_keep_ckpts=1)),
        custom_imports=dict(
            imports=['olor_mm', 'toy', 'slow_save'],
            allow_failed_imports=False))
    env = dict(
        TOOL_ENV,
        PYTHONPATH=str(tmp_path / 'mods') + os.pathsep +
        TOOL_ENV['PYTHONPATH'])
    straight = tmp_path / 'straight'
    train_tool(config, straight, env=env)
    work = tmp_path / 'killed'
    cmd = [
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
        str(work)
    ]
    proc = subprocess.Popen(
        cmd,
        env=dict(env, SLOW_SAVE='30'),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    # the first checkpoint is complete; the second is being written
    while not glob.glob(str(work / '*6.pth*')):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = (work / 'last_checkpoint').read_text().strip()
    assert osp.isfile(last) and last.endswith('iter_3.pth')
    subprocess.run(
        cmd + ['--resume'],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600)
    a = state(straight / 'iter_6.pth')
    b = state(work / 'iter_6.pth')
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k]), k
    assert not glob.glob(str(work / '*.part'))


def test_killed_while_saving_resume_takes_the_last_complete(tmp_path):
    """A kill during the save of iter_6.pth leaves it truncated and
    last_checkpoint at iter_3.pth (MMEngine writes it after the save)."""
    work, pretrained = adamw_checkpoints(tmp_path)
    damaged = work / 'iter_6.pth'
    data = damaged.read_bytes()
    damaged.write_bytes(data[:len(data) // 2])
    (work / 'last_checkpoint').write_text(str(work / 'iter_3.pth'))
    # naming the damaged file explicitly: which file, and the way out
    explicit = resumed_runner(tmp_path / 'other', adamw_wrapper_cfg(), damaged)
    with pytest.raises(
            RuntimeError,
            match=f'{damaged} cannot be read: it is '
            'damaged or incomplete.*iter_3.pth'):
        explicit.train()
    # --resume without a path: MMEngine's last_checkpoint, the complete one
    resumed = resumed_runner(work, adamw_wrapper_cfg())
    resumed.train()
    assert resumed.iter == 6
    names = {id(p): n for n, p in resumed.model.named_parameters()}
    anchor = olor_mm.find_rollback(resumed.optim_wrapper.optimizer)
    for p, t in zip(anchor.anchored_params, anchor.theta0):
        assert torch.equal(t, pretrained[names[id(p)]])  # not fine-tuned
