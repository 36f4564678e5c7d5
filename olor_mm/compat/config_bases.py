"""``_base_ = 'mmdet::...'`` configs without ``pkg_resources``, and
``olor_mm::`` bases.

The bugs: MMEngine (up to 0.10.7) finds the package of a ``mmdet::`` /
``mmseg::`` base with ``pkg_resources``, which setuptools 81 removed; torch
2.13 asks for setuptools >= 77, so a fresh environment gets one without it,
and every config that inherits an upstream one fails to load
(``ModuleNotFoundError: No module named 'pkg_resources'``). And its
``get_installed_path`` points a package installed in editable mode (``pip
install -e .``, PEP 660) at a folder of site-packages that does not exist,
so an ``olor_mm::`` base of a development install cannot be found.

The fix gives ``mmengine.utils.package_utils`` (and the names
``mmengine.config.config`` imported from it) ``is_installed``,
``get_installed_path`` and ``package2module`` written with
``importlib.metadata``, the standard library's replacement, with the same
results; it applies only where ``pkg_resources`` cannot be imported.
It helps wherever olor-mm is imported before a config is read (olor-mm's
``tools/``, ``import olor_mm`` in your own script); MMDetection's and
MMSegmentation's own ``tools/train.py`` read the config first, so there
``pip install 'setuptools<81'`` is the fix (``import olor_mm`` says so).
"""
import importlib.metadata
import importlib.util
import logging
import os.path as osp


def has_bug() -> bool:
    """``pkg_resources`` is gone and MMEngine still uses it, or MMEngine
    places this package (installed in editable mode) where it is not."""
    import inspect

    from mmengine.utils import package_utils
    if getattr(package_utils.is_installed, '_olor', False):
        return False
    if not _has_pkg_resources():
        return 'pkg_resources' in inspect.getsource(package_utils)
    # MMEngine places a package at <its distribution's location>/<module>
    dist = _distribution('olor-mm')
    if dist is None:  # not installed as a distribution: nothing to fix
        return False
    here = osp.dirname(osp.dirname(osp.abspath(__file__)))
    placed = osp.join(str(dist.locate_file('')), 'olor_mm')
    return osp.realpath(placed) != osp.realpath(here)


def _has_pkg_resources() -> bool:
    """Whether ``pkg_resources`` exists (found, not imported: importing it
    warns that it is deprecated)."""
    try:
        return importlib.util.find_spec('pkg_resources') is not None
    except ImportError:
        return False


def _distribution(package: str):
    try:
        return importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_installed(package: str) -> bool:
    """MMEngine's ``is_installed``: a distribution, or an importable
    module of that name."""
    if _distribution(package) is not None:
        return True
    spec = importlib.util.find_spec(package)
    return spec is not None and spec.origin is not None


def package2module(package: str) -> str:
    """MMEngine's ``package2module``: the distribution's first top-level
    module."""
    dist = _distribution(package)
    top = dist.read_text('top_level.txt') if dist else None
    if not top:
        raise ValueError(f'can not infer the module name of {package}')
    return top.split('\n')[0]


def get_installed_path(package: str) -> str:
    """MMEngine's ``get_installed_path``: where the package's module is."""
    dist = _distribution(package)
    if dist is None:
        spec = importlib.util.find_spec(package)
        if spec is None:
            raise importlib.metadata.PackageNotFoundError(package)
        if spec.origin is None:
            raise RuntimeError(f'{package} is a namespace package, which is '
                               'invalid for `get_install_path`')
        return osp.dirname(spec.origin)
    location = str(dist.locate_file(''))
    possible = osp.join(location, package)
    if osp.exists(possible):
        return possible
    module = package2module(package)
    spec = importlib.util.find_spec(module)  # editable installs
    if spec is not None and spec.origin is not None:
        return osp.dirname(spec.origin)
    return osp.join(location, module)


for _function in (is_installed, package2module, get_installed_path):
    _function._olor = True


def apply() -> bool:
    """Patch MMEngine's three functions where the bug is; idempotent.

    MMDetection's and MMSegmentation's own tools read their config before
    olor-mm is imported: one warning gives them the fix.
    """
    if not has_bug():
        return False
    import mmengine.hub.hub
    import mmengine.utils
    from mmengine.config import config
    from mmengine.logging import print_log
    from mmengine.utils import package_utils
    missing = not _has_pkg_resources()
    for name in ('is_installed', 'get_installed_path', 'package2module'):
        for module in (package_utils, mmengine.utils, config,
                       mmengine.hub.hub):
            if hasattr(module, name):
                setattr(module, name, globals()[name])
    if not missing:
        return True
    print_log(
        'olor-mm: setuptools >= 81 has no pkg_resources, which MMEngine '
        "needs to read 'mmdet::' / 'mmseg::' bases; olor-mm's tools and "
        'scripts that import olor_mm first read them anyway. For '
        "MMDetection's / MMSegmentation's own tools/train.py run: pip "
        "install 'setuptools<81'.",
        logger='current',
        level=logging.WARNING)
    return True


def register_config_package() -> None:
    """Let configs inherit olor-mm's own: ``_base_ =
    ['olor_mm::_base_/olor.py']`` (MMEngine reads ``<package>/.mim/configs``
    of the packages its table names). Idempotent."""
    from mmengine.config import utils
    utils.MODULE2PACKAGE.setdefault('olor_mm', 'olor-mm')
