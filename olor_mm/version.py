"""olor-mm's version and the versions of its stack it supports.

:func:`check_versions` runs at ``import olor_mm``, as MMDetection checks its
mmcv / mmengine: a torch, MMEngine or mmcv outside the supported range is one
``ImportError`` naming the installed and the supported versions. Ranges
(floors found by testing; see the README's compatibility table):

- torch >= 2.1: the optimizer's state-dict hooks the rollback hangs on;
- mmengine >= 0.8.5, < 1.0: 0.8.0-0.8.4 fail to print configs with the yapf
  of today; MMEngine < 0.10.3 resumes iteration-based runs out of step (its
  own bug, with or without OLOR), which only a warning says;
- mmcv >= 2.0.0rc4, < 2.2.0 (what MMDetection 3.x and MMSegmentation 1.x
  accept), checked only where mmcv is installed.
"""
import warnings
from importlib import metadata
from typing import Dict, Optional, Tuple

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

__version__ = '0.2.0'

#: package -> (lowest supported, first unsupported or None)
SUPPORTED: Dict[str, Tuple[str, Optional[str]]] = {
    'torch': ('2.1.0', None),
    'mmengine': ('0.8.5', '1.0.0'),
    'mmcv': ('2.0.0rc4', '2.2.0'),
}
#: MMEngine from which a resumed iteration-based run continues exactly
MMENGINE_EXACT_RESUME = '0.10.3'


def parse_version(version: str) -> Version:
    """A version as pip orders it (PEP 440: ``'2.0.0rc4' < '2.0.0' <
    '2.13.0+cpu'``)."""
    try:
        return Version(version)
    except InvalidVersion:
        raise ValueError(f'cannot read the version {version!r}') from None


def _specifier(name: str) -> str:
    low, high = SUPPORTED[name]
    return f'>={low}' + (f',<{high}' if high else '')


def _range(name: str) -> str:
    return name + _specifier(name)


def check_versions(installed: Dict[str, Optional[str]]) -> None:
    """Raise if an installed version is outside its supported range.

    Args:
        installed: ``{package: version}``; None (not installed) is skipped.

    Raises:
        ImportError: naming every package out of range, its installed and
            its supported versions, and the pip command that fixes it.
    """
    bad = []
    for name, version in installed.items():
        if version is None:
            continue
        # pre-releases (a nightly torch) count, in PEP 440 order
        if not SpecifierSet(_specifier(name)).contains(
                parse_version(version), prereleases=True):
            bad.append((name, version))
    if bad:
        raise ImportError('olor-mm ' + __version__ + ' does not support ' +
                          ', '.join(
                              f'{name} {version} (supported: {_range(name)})'
                              for name, version in bad) +
                          '. Install supported versions, '
                          'e.g. pip install ' +
                          ' '.join(f'"{_range(n)}"' for n, _ in bad) + '.')
    mmengine = installed.get('mmengine')
    if mmengine and parse_version(mmengine) < parse_version(
            MMENGINE_EXACT_RESUME):
        warnings.warn(
            f'mmengine {mmengine} resumes iteration-based runs with another '
            'data order than an uninterrupted run (with or without OLOR); '
            f'mmengine>={MMENGINE_EXACT_RESUME} resumes exactly.',
            stacklevel=3)


def installed_versions(*names: str) -> Dict[str, Optional[str]]:
    """Versions from the installed distributions' metadata (no import)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
