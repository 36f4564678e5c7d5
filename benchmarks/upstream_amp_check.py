"""MMDetection's own tools/train.py (--amp on a GPU) rolls back.

Runs the ``tools/train.py`` MMDetection installs (``mmdet/.mim/tools``) on
the demo OLOR config with ``--amp`` (which rewrites the wrapper type to
MMEngine's ``AmpOptimWrapper``), and the same run with ``rollback_max=0``;
both start from one local stand-in checkpoint on generated data. It checks
that theta0 in the checkpoint is the loaded weights, that MMEngine's
AmpOptimWrapper ran (its loss scaler is in the checkpoint), and that the
backbone ended closer to theta0 with the
rollback, and writes the figures as JSON.

Example (tools/gpu_check.sh runs it)::

    python benchmarks/upstream_amp_check.py --out gpu_upstream_amp.json
    python benchmarks/upstream_amp_check.py --no-amp   # a CPU machine
"""
import argparse
import datetime
import json
import os.path as osp
import subprocess
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.append(osp.join(ROOT, 'tools'))  # tools/olor_mm_tools

CONFIG = osp.join(ROOT, 'configs', 'demo',
                  'mask-rcnn_r18-tiny_demo-downstream_olor.py')


def mmdet_train_py() -> str:
    import mmdet
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')


def backbone_distance(state, theta0_by_name):
    return sum(
        float((state[n].double() - t.double()).pow(2).sum())
        for n, t in theta0_by_name.items())**0.5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--work-dir', default='work_dirs/upstream_amp')
    parser.add_argument(
        '--no-amp',
        action='store_true',
        help='without --amp (MMEngine\'s AmpOptimWrapper '
        'needs a GPU)')
    parser.add_argument('--out', default=None, help='JSON of the result')
    args = parser.parse_args(argv)
    from mmengine.config import Config

    from olor_mm.compat import load_from_local_safe
    from olor_mm.core.theta0 import saved_theta0
    from olor_mm.tools.pretrained import write_pretrained
    from olor_mm_tools.demo_data import make_instance_sets

    data = make_instance_sets(
        osp.join(args.work_dir, 'data'), img_size=128, num_train=16,
        num_val=4)['downstream']
    ckpt = osp.join(args.work_dir, 'pretrained.pth')
    expected = write_pretrained(
        Config.fromfile(CONFIG), ckpt, full_detector=True)
    opts = [
        f'train_cfg.max_iters={args.iters}',
        f'train_cfg.val_interval={10 * args.iters}',
        f'default_hooks.checkpoint.interval={args.iters}',
        f'train_dataloader.dataset.data_root={data}/',
        f'val_dataloader.dataset.data_root={data}/',
        f'val_evaluator.ann_file={data}/instances_val.json',
        f'load_from={ckpt}', 'randomness.seed=0',
        'param_scheduler.0.start_factor=1.0',
        'optim_wrapper.paramwise_cfg.scale_with_lr=False'
    ]
    result = dict(
        date=datetime.date.today().isoformat(),
        device=(torch.cuda.get_device_name()
                if torch.cuda.is_available() else 'cpu'),
        amp=not args.no_amp,
        train_py=mmdet_train_py())
    states = {}
    for run, rollback in (('olor', 0.5), ('plain', 0.0)):
        work = osp.join(args.work_dir, run)
        cmd = [
            sys.executable,
            mmdet_train_py(), CONFIG, '--work-dir', work,
            *([] if args.no_amp else ['--amp']), '--cfg-options', *opts,
            f'optim_wrapper.paramwise_cfg.rollback_max={rollback}'
        ]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        log = out.stdout + out.stderr
        if out.returncode:
            raise SystemExit(f'{run}: MMDetection\'s train.py failed:\n' +
                             log[-4000:])
        states[run] = load_from_local_safe(
            osp.join(work, f'iter_{args.iters}.pth'), map_location='cpu')
    optim = states['olor']['optimizer']
    # AmpOptimWrapper (what --amp writes) saves its loss scaler
    result['amp_wrapper_ran'] = 'loss_scaler' in optim
    theta0 = saved_theta0(optim)
    # theta0 is indexed like the optimizer's parameters; the stand-in's
    # values are random, so equality names each tensor
    anchored = {}
    model = states['olor']['state_dict']
    for k, t in theta0.items():
        match = [
            n for n, v in expected.items()
            if n in model and v.shape == t.shape and torch.equal(v, t)
        ]
        anchored[match[0] if match else f'#{k}'] = t
    result['theta0_tensors'] = len(theta0)
    result['theta0_is_the_loaded_weights'] = all(not n.startswith('#')
                                                 for n in anchored)
    backbone = {n: t for n, t in anchored.items() if n.startswith('backbone.')}
    result['distance_olor'] = backbone_distance(model, backbone)
    result['distance_plain'] = backbone_distance(states['plain']['state_dict'],
                                                 backbone)
    result['rolled_back'] = result[
        'distance_olor'] < 0.8 * result['distance_plain']
    result['ok'] = (
        result['theta0_is_the_loaded_weights'] and result['rolled_back']
        and result['amp_wrapper_ran'] == result['amp'])
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return 0 if result['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
