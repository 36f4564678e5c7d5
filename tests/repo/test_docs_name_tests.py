"""Every test the docs name exists: each ``tests/...py::test_name[id]`` in
README.md, docs/*.md and configs/*/README.md is a test pytest collects, each
``tests/...py`` a file, and each probe case id in docs/reliability.md's
tables is in the name of a test named on its row (issue 35: the tests
moved to the module they test; the tables must still point at them)."""
import glob
import os.path as osp
import re
import subprocess
import sys

import pytest
from paths import ROOT

DOCS = ['README.md'] + sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs', '*.md')) +
    glob.glob(osp.join(ROOT, 'configs', '*', 'README.md')))
#: a test named by its file: tests/x/test_y.py::test_z, optionally [id]
NAMED = re.compile(r'(tests/[\w/]+\.py)::(test_\w+(?:\[[^\]`]*\])?)')
#: a file of tests/ named alone
FILE = re.compile(r'(tests/[\w/]+\.py)(?!::)')


@pytest.fixture(scope='module')
def collected():
    """Node ids pytest collects under tests/, with and without the
    parametrization suffix."""
    out = subprocess.run(
        [sys.executable, '-m', 'pytest', '--collect-only', '-q', 'tests'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300)
    ids = {line.strip() for line in out.stdout.splitlines() if '::' in line}
    assert len(ids) > 600, out.stdout[-2000:] + out.stderr[-2000:]
    return ids | {i.split('[')[0] for i in ids}


def _text(doc):
    with open(osp.join(ROOT, doc)) as f:
        return f.read()


@pytest.mark.parametrize('doc', DOCS)
def test_every_test_a_doc_names_is_collected(doc, collected):
    named = NAMED.findall(_text(doc))
    missing = [
        f'{path}::{name}' for path, name in named
        if f'{path}::{name}' not in collected
    ]
    assert not missing, f'{doc} names tests that do not exist: {missing}'
    files = [
        p for p in FILE.findall(_text(doc))
        if not osp.isfile(osp.join(ROOT, p))
    ]
    assert not files, f'{doc} names files that do not exist: {files}'


def _probe_rows():
    """``(ids, row)`` of every table row of docs/reliability.md whose first
    cell is a probe case id (``A8, A8c``, ``P4-A7, P4-A8``)."""
    rows = []
    for line in _text('docs/reliability.md').split('\n'):
        cells = [c.strip() for c in line.split('|')[1:-1]]
        if cells and re.fullmatch(r'(?:P4-)?[A-G]\d+[a-z]?(?:, .*)?',
                                  cells[0]):
            rows.append((cells[0].split(', '), line))
    return rows


def test_the_probe_tables_were_found():
    ids = [i for row_ids, _ in _probe_rows() for i in row_ids]
    assert 'A1' in ids and 'E4' in ids and 'P4-F11' in ids, ids
    assert len(ids) >= 25


@pytest.mark.parametrize(
    'ids, row', _probe_rows(), ids=[', '.join(r[0]) for r in _probe_rows()])
def test_every_probe_id_is_in_a_test_its_row_names(ids, row, collected):
    tests = [name for path, name in NAMED.findall(row)]
    assert tests, f'no test named on the row of {ids}'
    for case in ids:
        # P4-A8 in test_P4_A7_A8_..., A8c (a variant of A8) in test_A8_...
        prefix = 'test_P4_' if case.startswith('P4-') else 'test_'
        token = case[len('P4-'):] if case.startswith('P4-') else case
        base = token.rstrip('abcdefghijklmnopqrstuvwxyz')
        assert any(
            t.startswith(prefix) and (f'_{token}_' in t or f'_{base}_' in t)
            for t in tests), (
                f'probe case {case}: no test on its row carries the id: '
                f'{tests}')
