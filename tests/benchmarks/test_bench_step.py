"""benchmarks/bench_step.py's stock-vs-olor-mm and importance-weighted
parts on the CPU, tiny."""
import json
import os.path as osp
import subprocess
import sys

from paths import ROOT


def test_stock_vs_olormm_runs_and_records(tmp_path):
    out = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'benchmarks',
                 'bench_step.py'), '--device', 'cpu', '--parts', 'stock',
        'importance', '--sets', 'ResNet-18 backbone', '--reps', '2', '--out',
        str(tmp_path)
    ],
                         cwd=ROOT,
                         capture_output=True,
                         text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    with open(tmp_path / 'bench_step_cpu.json') as f:
        result = json.load(f)
    rows = {r['optimizer']: r for r in result['stock']}
    assert set(rows) == {'AdamW', 'SGD-momentum'}
    for r in rows.values():
        # stock: MMEngine's one group, torch's default loop; olor-mm: one
        # group per layer and decay option, torch's fused kernel
        assert r['stock_groups'] == 1 and r['olormm_groups'] > 1
        assert r['olormm_kernel'] == 'fused'
        assert r['stock_ms'] > 0 and r['olormm_ms'] > 0
    assert 'olor-mm / stock' in (tmp_path / 'bench_step_cpu.md').read_text()
    # the importance-weighted rollback: w costs what theta0 does (float32)
    (iw, ) = result['importance']
    assert iw['iw_ms'] > 0 and iw['olor_ms'] > 0
    assert iw['w_mib'] == iw['theta0_mib'] > 0
