"""olor-mm: the metadata lives in pyproject.toml.

Like OpenMMLab's packages, olor-mm ships its configs inside the package as
``olor_mm/.mim/configs``, so that a config anywhere can inherit them with
``_base_ = ['olor_mm::_base_/olor.py']`` (MMEngine reads
``<package>/.mim/configs``): a symlink to ``configs/`` for an editable
install (``pip install -e .``), a copy in a wheel or an sdist. This shim
also keeps ``python setup.py develop`` working.
"""
import os
import os.path as osp
import shutil
import sys
from setuptools import setup

#: what goes under olor_mm/.mim (MMEngine reads model-index.yml there)
MIM = ('configs', 'model-index.yml')


def add_mim_extension() -> list:
    """Link (editable installs) or copy (wheels, sdists) MIM into the
    package, as OpenMMLab's setup.py files do. Returns the links a copy
    replaced (a build in an editable checkout), to put back afterwards."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('bdist_wheel', 'sdist', 'build')):
        mode = 'copy'
    else:
        return []
    root = osp.dirname(osp.abspath(__file__))
    mim = osp.join(root, 'olor_mm', '.mim')
    os.makedirs(mim, exist_ok=True)
    replaced = []
    for name in MIM:
        src, dst = osp.join(root, name), osp.join(mim, name)
        if not osp.exists(src):  # a build from an sdist: .mim is its copy
            continue
        if osp.islink(dst):
            if mode == 'copy':
                replaced.append((os.readlink(dst), dst))
            os.remove(dst)
        elif osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
    return replaced


def restore_links(replaced: list) -> None:
    """An editable checkout keeps its links after a wheel was built in it,
    so that later edits of configs/ reach ``olor_mm::`` bases."""
    for target, dst in replaced:
        if osp.isdir(dst) and not osp.islink(dst):
            shutil.rmtree(dst)
        elif osp.lexists(dst):
            os.remove(dst)
        os.symlink(target, dst)


links = add_mim_extension()
try:
    setup()
finally:
    restore_links(links)
