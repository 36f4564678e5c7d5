"""benchmarks/train_speed.py on the CPU: the GPU sweep's script, tiny."""
import json
import os.path as osp
import subprocess
import sys

from e2e_utils import table_rows
from paths import ROOT

CONFIG = osp.join(ROOT, 'configs', 'mmseg',
                  'segformer_mit-b0_olor_8xb2-160k_ade20k-512x512.py')


def _run(tmp_path):
    out = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'benchmarks', 'train_speed.py'), CONFIG, '--iters', '2',
        '--warmup', '1', '--scale', '0.25', '--workers', '0', '--work-dir',
        str(tmp_path / 'work'), '--out',
        str(tmp_path / 'speed.json')
    ],
                         cwd=ROOT,
                         capture_output=True,
                         text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_runs_records_and_resumes(tmp_path):
    first = _run(tmp_path)
    with open(tmp_path / 'speed.json') as f:
        results = json.load(f)
    runs = {r['variant']: r for r in results['runs']}
    assert set(runs) == {'olor', 'plain'} and len(results['runs']) == 2
    for r in runs.values():
        assert r['iters_timed'] == 2 and r['iters_per_s'] > 0
        assert 0 < r['step_share'] < 1 and r['peak_mem_mib'] > 0
    # the rollback ran (and was timed) only where something rolls back
    assert runs['olor']['rolled_params'] > 0
    assert 0 < runs['olor']['rollback_share'] < runs['olor']['step_share']
    assert runs['plain']['rolled_params'] == 0
    assert runs['plain']['rollback_share'] == 0
    assert 'amp (no GPU)' in first  # said, not silently dropped
    # a second call skips what is done
    second = _run(tmp_path)
    assert second.count('done before, skipped') == 2
    # the Markdown table: a row per run, its cells the recorded values
    table = table_rows((tmp_path / 'speed.md').read_text())
    assert table[0] == [
        'config', 'variant', 'mode', 'date', 'iters/s', 'iteration ms',
        'step %', 'rollback %', 'peak MiB'
    ]
    config = 'segformer_mit-b0_olor_8xb2-160k_ade20k-512x512'
    assert {(row[0], row[1], row[2])
            for row in table[1:]} == {(config, 'olor', 'fp32'),
                                      (config, 'plain', 'fp32')}
    for row in table[1:]:
        r = runs[row[1]]
        assert row[4:] == [
            f"{r['iters_per_s']:.2f}", f"{r['median_iter_ms']:.0f}",
            f"{100 * r['step_share']:.1f}", f"{100 * r['rollback_share']:.2f}",
            f"{r['peak_mem_mib']:.0f}"
        ]
