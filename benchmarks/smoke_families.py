"""tools/smoke_train.py on an upstream config of every backbone family.

Each family's upstream config (MMDetection's or MMSegmentation's, as a
user would take it) plus OLOR's wrapper block
(``configs/_base_/olor_optim_wrapper.py``; ``olor.py`` would also set
``custom_hooks``, which RTMDet's and YOLOX's configs set already), run
through ``tools/smoke_train.py`` at its default reduced scale. Resumable: a
family whose output is already in WORK_DIR is not run again. Writes
``--out`` (a Markdown table: family, config, checks passed, wall time,
notes) and each run's output next to it.

    python benchmarks/smoke_families.py [--families RTMDet YOLOX ...]
        [--work-dir work_dirs/smoke_families]
        [--out benchmarks/results/smoke_families.md]
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import time

from olor_mm.tools.tables import markdown_table

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: family -> upstream config (scope::path)
FAMILIES = {
    'RTMDet': 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'YOLOX': 'mmdet::yolox/yolox_s_8xb8-300e_coco.py',
    'DINO': 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    'Deformable DETR':
    'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
    'Mask2Former': 'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-'
    '512x512.py',
    'PIDNet': 'mmseg::pidnet/pidnet-s_2xb6-120k_1024x1024-cityscapes.py',
    'DDRNet': 'mmseg::ddrnet/ddrnet_23-slim_in1k-pre_2xb6-120k_cityscapes-'
    '1024x1024.py',
    'HRNet': 'mmdet::hrnet/faster-rcnn_hrnetv2p-w18-1x_coco.py',
    'EfficientNet':
    'mmdet::efficientnet/retinanet_effb3_fpn_8xb4-crop896-1x_coco.py',
    'PVT': 'mmdet::pvt/retinanet_pvtv2-b0_fpn_1x_coco.py',
    'SegNeXt': 'mmseg::segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-'
    '512x512.py',
    'MobileNet': 'mmseg::mobilenet_v3/mobilenet-v3-d8-s_lraspp_4xb4-320k_'
    'cityscapes-512x1024.py',
    'STDC': 'mmseg::stdc/stdc1_in1k-pre_4xb12-80k_cityscapes-512x1024.py',
}

#: --cfg-options of a family beyond the OLOR block: STDC's backbone is its
#: context path, whose pretrained part is the inner STDCNet
OPTIONS = {
    'STDC':
    ['optim_wrapper.paramwise_cfg.pretrained_prefixes=[backbone.'
     'backbone]']
}


def olor_config(family: str, upstream: str, folder: str) -> str:
    """A config file: the upstream one + the OLOR block."""
    base = osp.join(ROOT, 'configs', '_base_', 'olor_optim_wrapper.py')
    path = osp.join(folder, re.sub(r'\W+', '_', family.lower()) + '.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = [{upstream!r}, {base!r}]\n'
                "custom_imports = dict(imports=['olor_mm'], "
                'allow_failed_imports=False)\n'
                'optim_wrapper = {{_base_.olor_optim_wrapper}}\n')
    return path


def run(family: str, upstream: str, work_dir: str) -> dict:
    folder = osp.join(work_dir, re.sub(r'\W+', '_', family.lower()))
    os.makedirs(folder, exist_ok=True)
    log = osp.join(folder, 'smoke_train.txt')
    if osp.isfile(log) and re.search(r'^wall \d+ s', open(log).read(), re.M):
        return summary(family, upstream, log)  # ran to its end before
    config = olor_config(family, upstream, folder)
    start = time.time()
    with open(log, 'w') as out:
        subprocess.run(
            [
                sys.executable,
                osp.join(ROOT, 'tools', 'smoke_train.py'), config,
                '--work-dir',
                osp.join(folder, 'run')
            ] +
            (['--cfg-options'] + OPTIONS[family] if family in OPTIONS else []),
            stdout=out,
            stderr=subprocess.STDOUT)
        out.write(f'wall {time.time() - start:.0f} s\n')
    return summary(family, upstream, log)


def summary(family, upstream, log) -> dict:
    text = open(log).read()
    checks = re.findall(r'^(PASS|FAIL) (\S+)', text, re.M)
    wall = re.search(r'^wall (\d+) s', text, re.M)
    return dict(
        family=family,
        config=upstream,
        passed=sum(s == 'PASS' for s, _ in checks),
        checks=len(checks),
        failed=[n for s, n in checks if s == 'FAIL'],
        wall=int(wall.group(1)) if wall else None,
        notes=[
            n.strip() for n in re.findall(r'^NOTE (scale [^:]*)', text, re.M)
        ],
        ok='all ' in text and 'checks passed' in text)


def _cells(r) -> tuple:
    """The table row of one family's result."""
    failed = f' (failed: {", ".join(r["failed"])})' if r['failed'] else ''
    notes = r['notes'] + [
        f'`--cfg-options {o}`' for o in OPTIONS.get(r['family'], [])
    ]
    return (r['family'],
            f'`{r["config"]}`', f'{r["passed"]} of {r["checks"]}{failed}',
            str(r['wall']), '; '.join(notes))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--families', nargs='+', default=list(FAMILIES))
    parser.add_argument('--work-dir', default='work_dirs/smoke_families')
    parser.add_argument(
        '--out',
        default=osp.join(ROOT, 'benchmarks', 'results', 'smoke_families.md'))
    args = parser.parse_args(argv)
    rows = []
    for family in args.families:
        row = run(family, FAMILIES[family], args.work_dir)
        rows.append(row)
        print(
            f'{family}: {row["passed"]}/{row["checks"]} checks' +
            (f' (failed: {", ".join(row["failed"])})' if row['failed'] else '')
            + f', {row["wall"]} s',
            flush=True)
    lines = [
        '# tools/smoke_train.py on an upstream config of every family', '',
        f'`python benchmarks/smoke_families.py`, {time.strftime("%Y-%m-%d")}'
        ', CPU (each config: its upstream file + the OLOR block of '
        '`configs/_base_/`).', ''
    ]
    lines.append(
        markdown_table([_cells(r) for r in rows],
                       ('family', 'upstream config', 'checks passed',
                        'wall (s)', 'notes'), 'llrrl'))
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return 0 if all(r['ok'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
