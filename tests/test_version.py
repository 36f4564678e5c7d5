"""The import-time version check, like MMDetection's check of mmcv."""
import subprocess
import sys
import warnings

import pytest

from olor_mm.version import SUPPORTED, check_versions, parse_version


def test_versions_order_like_pip():
    assert parse_version('2.0.0rc4') < parse_version('2.0.0') < \
        parse_version('2.1.0') < parse_version('2.13.0+cpu')
    assert parse_version('0.10.7') > parse_version('0.8.5')
    assert parse_version('2.2') == parse_version('2.2.0')


def test_the_installed_stack_is_supported():
    import mmcv
    import mmengine
    import torch
    exact = parse_version(mmengine.__version__) >= parse_version('0.10.3')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        check_versions(
            dict(
                torch=torch.__version__,
                mmengine=mmengine.__version__,
                mmcv=mmcv.__version__))
    # the only warning is the inexact resume of MMEngine < 0.10.3
    assert len(caught) == (0 if exact else 1)


@pytest.mark.parametrize('name, version',
                         [('mmengine', '0.7.4'), ('mmengine', '1.0.0'),
                          ('mmcv', '2.2.0'), ('mmcv', '1.7.2'),
                          ('torch', '2.0.1')])
def test_outside_the_range_is_one_error_naming_both_versions(name, version):
    low, high = SUPPORTED[name]
    with pytest.raises(ImportError) as err:
        check_versions({
            name: version,
            'torch': '2.13.0'
        } if name != 'torch' else {name: version})
    message = str(err.value)
    assert f'{name} {version}' in message and f'{name}>={low}' in message
    assert 'pip install' in message
    if high:
        assert f'<{high}' in message


def test_all_bad_versions_in_one_message():
    with pytest.raises(ImportError, match='mmengine 0.7.0.*mmcv 2.2.0'):
        check_versions(dict(mmengine='0.7.0', mmcv='2.2.0'))


def test_old_mmengine_warns_about_inexact_resume():
    with pytest.warns(UserWarning, match='mmengine>=0.10.3 resumes exactly'):
        check_versions(dict(mmengine='0.9.1'))


def test_import_fails_with_an_unsupported_mmengine():
    """Simulated: the installed mmengine says it is 0.7.0."""
    code = ('import mmengine; mmengine.__version__ = "0.7.0"\n'
            'try:\n    import olor_mm\n'
            'except ImportError as e:\n    print("REFUSED", e)\n')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         timeout=120)
    assert 'REFUSED olor-mm' in out.stdout, out.stdout + out.stderr
    assert 'mmengine 0.7.0 (supported: mmengine>=0.8.5,<1.0.0)' in out.stdout
