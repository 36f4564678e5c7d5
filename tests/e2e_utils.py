"""Helpers of the end-to-end tests: tools/train.py as a subprocess."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from paths import ROOT, TESTS
from toy import pretrained_checkpoint, runner_cfg, sgd_wrapper_cfg

DEMO = osp.join(ROOT, 'configs', 'demo')


def load_script(path: str, name: str):
    """The module of a command-line script of the repository (``path``
    from the root, e.g. ``tools/train.py``), under ``name``: scripts are
    not a package, what they share is in ``olor_mm_tools``."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def options(data_root, iters, ckpt_interval=None, coco=True):
    """--cfg-options for a short run on tiny data, logging every iter."""
    opts = [
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={ckpt_interval or iters}',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1',
        f'train_dataloader.dataset.data_root={data_root}/',
        'train_dataloader.batch_size=2',
        f'val_dataloader.dataset.data_root={data_root}/',
    ]
    if coco:
        opts.append(f'val_evaluator.ann_file={data_root}/instances_val.json')
    return opts


def train_cmd(config, work_dir, opts, *extra):
    return [
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
        str(work_dir), *extra, '--cfg-options', *opts
    ]


def train(config, work_dir, opts, *extra):
    """Run tools/train.py; fail with its output's tail; return the output."""
    out = subprocess.run(
        train_cmd(config, work_dir, opts, *extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def kill_after_checkpoint(cmd, work_dir, delay=0.0, env=None):
    """Start ``cmd`` (a training run into ``work_dir``), SIGKILL it
    ``delay`` seconds after its first checkpoint (MMEngine's
    ``last_checkpoint`` file) appears; fails if the run ends first."""
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def demo_sets(tmp_path_factory, task):
    """The demo's upstream and downstream sets, small: 8 train, 4 val."""
    from olor_mm_tools import demo_data as make_demo_data
    make = dict(
        instance=make_demo_data.make_instance_sets,
        semseg=make_demo_data.make_semseg_sets)[task]
    out = tmp_path_factory.mktemp(task)
    return make(str(out), img_size=128, num_train=8, num_val=4)


def pretrain(tmp_path_factory, config, opts, iters):
    """Train ``config`` upstream for ``iters`` iterations; its checkpoint."""
    work_dir = tmp_path_factory.mktemp('upstream')
    train(config, work_dir, opts)
    return osp.join(work_dir, f'iter_{iters}.pth')


def demo_fixtures(task, upstream, options, iters=4):
    """The module-scoped fixtures ``data`` (:func:`demo_sets` of ``task``)
    and ``pretrained`` (:func:`pretrain` of ``upstream`` on
    ``data['upstream']`` for ``iters`` iterations, under ``options(data_root,
    iters)``) of an end-to-end test module::

        data, pretrained = demo_fixtures('instance', UPSTREAM, options)
    """

    @pytest.fixture(scope='module')
    def data(tmp_path_factory):
        """The demo's upstream and downstream sets of the module's task."""
        return demo_sets(tmp_path_factory, task)

    @pytest.fixture(scope='module')
    def pretrained(data, tmp_path_factory):
        """The upstream checkpoint the module's tests fine-tune."""
        return pretrain(tmp_path_factory, upstream,
                        options(data['upstream'], iters), iters)

    return data, pretrained


def scalars(work_dir):
    """Every row of the run's vis_data/scalars.json, in order."""
    rows = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    return rows


def state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def drift(ckpt, reference, prefix):
    """||theta - theta_ref|| over the float parameters under ``prefix``."""
    a, b = state(ckpt)['state_dict'], state(reference)['state_dict']
    keys = [
        k for k in a if k.startswith(prefix) and 'running_' not in k
        and a[k].is_floating_point() and k in b and a[k].shape == b[k].shape
    ]
    return sum(float((a[k] - b[k]).pow(2).sum()) for k in keys)**0.5


def table_rows(text):
    """The cells (stripped) of every Markdown table line of ``text``, the
    header rules left out."""
    rows = [[c.strip() for c in line.strip()[1:-1].split('|')]
            for line in text.splitlines() if line.startswith('|')]
    return [r for r in rows if not set(''.join(r)) <= set('-:')]


def upstream_analyzer(package, monkeypatch):
    """``tools/analysis_tools/analyze_logs.py`` of an installed OpenMMLab
    package (its wheel's ``.mim/tools``), imported as a module; seaborn,
    which only its plotting uses, is stubbed where it is not installed."""
    import importlib.util
    import types
    root = osp.dirname(importlib.util.find_spec(package).origin)
    path = osp.join(root, '.mim', 'tools', 'analysis_tools', 'analyze_logs.py')
    if ('seaborn' not in sys.modules
            and importlib.util.find_spec('seaborn') is None):
        monkeypatch.setitem(sys.modules, 'seaborn',
                            types.ModuleType('seaborn'))
    spec = importlib.util.spec_from_file_location(f'{package}_analyze_logs',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: the environment of a tool run on the toy model: tests/ importable
TOOL_ENV = dict(
    os.environ,
    PYTHONPATH=TESTS + os.pathsep + os.environ.get('PYTHONPATH', ''),
    OMP_NUM_THREADS='1')


def toy_config_file(tmp_path, **extra):
    """A toy config file for tools/train.py, loading the toy 'pretrained'
    checkpoint; returns (path, pretrained state dict)."""
    path, pretrained = pretrained_checkpoint(tmp_path)
    cfg = runner_cfg(
        'unused',
        sgd_wrapper_cfg(),
        max_iters=6,
        load_from=path,
        custom_imports=dict(
            imports=['olor_mm', 'toy'], allow_failed_imports=False))
    cfg.pop('work_dir')
    cfg.update(extra)
    config = tmp_path / 'toy.py'
    Config(cfg).dump(str(config))
    return str(config), pretrained


def train_tool(config, work, *extra, check=True, env=TOOL_ENV):
    """olor-mm's tools/train.py on ``config`` in a subprocess."""
    return subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
        str(work), *extra
    ],
                          env=env,
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600,
                          check=check)


def fine_tuned_checkpoint(cfg, path):
    """What MMEngine writes after an OLOR fine-tuning: the weights, an
    AdamW state with theta0 (a copy of the weights), the message hub with
    its HistoryBuffers, meta data."""
    from mmengine.logging import HistoryBuffer, MessageHub

    from olor_mm.tools.pretrained import build_model
    torch.manual_seed(0)
    model = build_model(cfg)
    state = model.state_dict()
    params = [p for p in model.parameters()]
    hub = MessageHub.get_instance('publish_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_info('iter', 6)
    assert isinstance(hub.log_scalars['train/loss'], HistoryBuffer)
    torch.save(
        dict(
            meta=dict(iter=6, epoch=0, mmengine_version='0.10.7'),
            state_dict=state,
            message_hub=hub.state_dict(),
            param_schedulers=[dict(last_step=6)],
            optimizer=dict(
                state={
                    k: dict(
                        exp_avg=torch.zeros_like(p),
                        exp_avg_sq=torch.zeros_like(p),
                        step=torch.tensor(6.))
                    for k, p in enumerate(params)
                },
                param_groups=[dict(lr=1e-4, params=list(range(len(params))))],
                olor_rollback=dict(
                    theta0={
                        k: p.detach().clone()
                        for k, p in enumerate(params)
                    },
                    config=None))), path)
    return state
