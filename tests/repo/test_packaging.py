"""What pip sees: ranges by role, extras, and an import that needs little."""
import email
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
from paths import ROOT

OPENMMLAB = ('mmcv', 'mmdet', 'mmsegmentation', 'mmengine')


def _source_copy(dest):
    """The tree git would commit (tracked and new, not ignored files):
    the wheel is built from this copy, since a build in place writes
    olor_mm/.mim and build/ into the checkout."""
    listed = subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard', '-z'],
        cwd=ROOT,
        capture_output=True,
        check=True).stdout.decode().split('\0')
    for name in filter(None, listed):
        src = osp.join(ROOT, name)
        if osp.isfile(src):
            os.makedirs(osp.dirname(osp.join(dest, name)), exist_ok=True)
            shutil.copy2(src, osp.join(dest, name))
    return dest


@pytest.fixture(scope='module')
def metadata(tmp_path_factory):
    """The wheel pip builds from olor-mm's sdist (the path of ``pip install
    olor-mm-X.tar.gz``; the sdist itself built from the source tree)."""
    out = tmp_path_factory.mktemp('wheel')
    source = _source_copy(str(tmp_path_factory.mktemp('source')))
    sdist = subprocess.run(
        [sys.executable, 'setup.py', '-q', 'sdist', '-d',
         str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300)
    assert sdist.returncode == 0, sdist.stderr[-3000:]
    (tarball, ) = out.glob('olor_mm-*.tar.gz')
    build = subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
        '--no-build-isolation',
        str(tarball), '-w',
        str(out)
    ],
                           capture_output=True,
                           text=True,
                           timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel, ) = out.glob('olor_mm-*.whl')
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith('/METADATA'))
        return email.message_from_bytes(z.read(name)), z.namelist(), wheel


def _requires(meta):
    """[(requirement, extra or None)]"""
    out = []
    for line in meta.get_all('Requires-Dist'):
        req, _, marker = line.partition(';')
        extra = marker.split('==')[1].strip().strip('"') if marker else None
        out.append((req.strip(), extra))
    return out


def test_no_exact_pins_and_the_stacks_only_in_extras(metadata):
    meta, files, _ = metadata
    requires = _requires(meta)
    base = {r.split('<')[0].split('>')[0] for r, e in requires if e is None}
    # packaging: the version ranges olor_mm checks at import; tabulate: the
    # layer table the constructor logs
    assert base == {'torch', 'mmengine', 'packaging', 'tabulate'}
    for req, extra in requires:
        name = req.split('<')[0].split('>')[0].split('=')[0]
        assert '==' not in req, req
        if name in ('mmcv', 'mmdet', 'mmsegmentation', 'ftfy', 'regex'):
            assert extra in ('mmdet', 'mmseg', 'all'), (req, extra)
    by_extra = {}
    for req, extra in requires:
        by_extra.setdefault(extra, set()).add(req.split('<')[0].split('>')[0])
    assert 'mmsegmentation' not in by_extra['mmdet']  # mmdet users: no mmseg
    assert 'mmdet' not in by_extra['mmseg']
    assert {'mmcv', 'mmdet', 'mmsegmentation'} <= by_extra['all']
    assert meta['License'] == 'Apache-2.0'
    assert any(f.endswith('LICENSE') for f in files)


def _install(wheel, tmp_path):
    """The wheel installed (no dependencies) into ``tmp_path/site``, and an
    empty folder of the user's, ``tmp_path/my_project``."""
    site = tmp_path / 'site'
    install = subprocess.run([
        sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target',
        str(site),
        str(wheel)
    ],
                             capture_output=True,
                             text=True,
                             timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    user = tmp_path / 'my_project'
    user.mkdir()
    return site, user


def test_an_installed_wheel_serves_its_configs_as_olor_mm_bases(
        metadata, tmp_path):
    """The configs ship inside the package (olor_mm/.mim/configs), so a
    config outside the repository inherits them as OpenMMLab's are."""
    _, files, wheel = metadata
    assert 'olor_mm/.mim/configs/_base_/olor.py' in files
    assert 'olor_mm/.mim/configs/mmdet/mask-rcnn_r50_fpn_olor_1x_coco.py' \
        in files
    site, user = _install(wheel, tmp_path)
    (user / 'my_config.py').write_text(
        "_base_ = ['olor_mm::_base_/olor_optim_wrapper.py']\n"
        'optim_wrapper = {{_base_.olor_optim_wrapper}}\n')
    code = ('import olor_mm\n'
            'from mmengine.config import Config\n'
            'cfg = Config.fromfile("my_config.py")\n'
            'print(olor_mm.__file__)\n'
            'print(cfg.optim_wrapper.constructor, '
            'cfg.optim_wrapper.paramwise_cfg.rollback_max)\n')
    out = subprocess.run([sys.executable, '-c', code],
                         cwd=user,
                         env=dict(os.environ, PYTHONPATH=str(site)),
                         capture_output=True,
                         text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    where, built = out.stdout.strip().splitlines()[-2:]
    assert where.startswith(str(site))  # the installed copy, not ROOT
    assert built == 'LayerwiseRollbackConstructor 0.01'


def test_the_wheel_installs_olor_mm_alone(metadata):
    """One top-level package: the tools users run are olor_mm.tools; the
    demo's and benchmarks' own modules (tools/olor_mm_tools) stay in the
    repository."""
    _, files, _ = metadata
    top = {f.split('/')[0] for f in files}
    assert {t for t in top if not t.endswith('.dist-info')} == {'olor_mm'}
    for tool in ('train', 'test', 'print_layers', 'smoke_train', 'forgetting',
                 'publish_model', 'plot_drift', 'wise_ft'):
        assert f'olor_mm/tools/{tool}.py' in files, tool
    assert 'olor_mm/configs/olor.py' in files


def test_installed_tools_and_config_block_work_without_a_checkout(
        metadata, tmp_path):
    """From the installed wheel, in a directory of the user's, with no
    checkout on the path: a config inherits OLOR's block by import, parsed
    as MMDetection's own tools/train.py parses it (olor_mm not imported
    first), and the check tools run as ``python -m olor_mm.tools.<tool>``
    on an upstream config."""
    _, _, wheel = metadata
    site, user = _install(wheel, tmp_path)
    (user / 'my_config.py').write_text(
        "_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n"
        'from olor_mm.configs.olor import *  # noqa: F401,F403\n'
        'optim_wrapper = olor_optim_wrapper\n')
    env = dict(os.environ, PYTHONPATH=str(site))
    code = ('import sys\n'
            'from mmengine.config import Config\n'
            'cfg = Config.fromfile("my_config.py")\n'
            'print(sys.modules["olor_mm"].__file__)\n'
            'print(cfg.optim_wrapper.type, cfg.optim_wrapper.constructor, '
            'cfg.optim_wrapper.optimizer.type, '
            'cfg.optim_wrapper.paramwise_cfg.rollback_max, '
            'cfg.custom_hooks[0].type, cfg.custom_imports.imports)\n')
    out = subprocess.run([sys.executable, '-c', code],
                         cwd=user,
                         env=env,
                         capture_output=True,
                         text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    where, built = out.stdout.strip().splitlines()[-2:]
    assert where.startswith(str(site))
    # merged into the upstream block: its SGD stays
    assert built == ("OptimWrapper LayerwiseRollbackConstructor SGD 0.01 "
                     "RollbackDriftHook ['olor_mm']")
    layers = subprocess.run([
        sys.executable, '-m', 'olor_mm.tools.print_layers',
        'mmdet::yolo/yolov3_d53_8xb8-amp-ms-608-273e_coco.py', '--cfg-options',
        'optim_wrapper.constructor=LayerwiseRollback'
        'Constructor'
    ],
                            cwd=user,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert layers.returncode == 0, layers.stderr[-3000:]
    assert "checked in float32 under 'OptimWrapper'" in layers.stdout
    assert 'Darknet' in layers.stdout and '0.010000' in layers.stdout
    # every other tool's command line, in one process: its --help
    code = ('import contextlib, importlib, io\n'
            'for tool in ("forgetting", "smoke_train", "publish_model", '
            '"plot_drift", "train", "test", "wise_ft"):\n'
            '    out = io.StringIO()\n'
            '    module = importlib.import_module(f"olor_mm.tools.{tool}")\n'
            '    assert module.__file__.startswith(%r), module.__file__\n'
            '    try:\n'
            '        with contextlib.redirect_stdout(out):\n'
            '            module.parse_args(["--help"])\n'
            '    except SystemExit as stop:\n'
            '        assert stop.code == 0, (tool, stop.code)\n'
            '    assert "usage:" in out.getvalue(), tool\n'
            '    print(tool, "ok")\n') % str(site)
    helped = subprocess.run([sys.executable, '-c', code],
                            cwd=user,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert helped.stdout.count(' ok') == 7, helped.stdout


def test_import_needs_neither_mmdet_nor_mmseg_nor_mmcv():
    code = '''
import sys


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmdet', 'mmseg', 'mmcv'):
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)


sys.meta_path.insert(0, Block())
import olor_mm
from mmengine.registry import OPTIM_WRAPPERS
assert OPTIM_WRAPPERS.get('OLOROptimWrapper') is olor_mm.OLOROptimWrapper
mm = ('mmc', 'mmd', 'mms', 'mme')
print('imported', sorted(m for m in sys.modules
                         if m.startswith(mm) and '.' not in m))
'''
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "imported ['mmengine']"
