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
import re
import warnings
from typing import Dict, Optional, Tuple

__version__ = '0.2.0'

#: package -> (lowest supported, first unsupported or None)
SUPPORTED: Dict[str, Tuple[str, Optional[str]]] = {
    'torch': ('2.1.0', None),
    'mmengine': ('0.8.5', '1.0.0'),
    'mmcv': ('2.0.0rc4', '2.2.0'),
}
#: MMEngine from which a resumed iteration-based run continues exactly
MMENGINE_EXACT_RESUME = '0.10.3'


def parse_version(version: str) -> Tuple[int, ...]:
    """``'2.13.0+cpu'`` -> (2, 13, 0, 0, 0); ``'2.0.0rc4'`` -> (2, 0, 0,
    -1, 4): a pre-release sorts before its release."""
    m = re.match(r'(\d+)\.(\d+)(?:\.(\d+))?(?:\.?(a|b|rc|dev)(\d*))?', version)
    if m is None:
        raise ValueError(f'cannot read the version {version!r}')
    major, minor, patch, pre, num = m.groups()
    return (int(major), int(minor), int(patch
                                        or 0), -1 if pre else 0, int(num or 0))


def _range(name: str) -> str:
    low, high = SUPPORTED[name]
    return f'{name}>={low}' + (f',<{high}' if high else '')


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
        low, high = SUPPORTED[name]
        v = parse_version(version)
        if v < parse_version(low) or (high and v >= parse_version(high)):
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
    from importlib import metadata
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
