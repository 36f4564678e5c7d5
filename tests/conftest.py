import logging
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# tools/olor_mm_tools: what the demo, benchmarks and tests share (not
# installed); appended, so that nothing of tools/ shadows a package
sys.path.append(
    os.path.join(os.path.dirname(os.path.dirname(__file__)), 'tools'))


def pytest_sessionstart(session):
    """The matrix job tests the installed wheel, never the checkout."""
    if os.environ.get('OLOR_MM_EXPECT_INSTALLED'):
        import olor_mm
        assert 'site-packages' in olor_mm.__file__, (
            f'olor_mm imported from {olor_mm.__file__}, not the installed '
            'package')


@pytest.fixture
def mm_log():
    """Records of MMEngine's current logger (it does not propagate)."""
    from mmengine.logging import MMLogger
    records = []

    class Keep(logging.Handler):

        def emit(self, record):
            records.append(record)

    logger = MMLogger.get_current_instance()
    handler = Keep(level=logging.DEBUG)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture
def toy_pretrained(tmp_path):
    """``(path, state_dict)`` of a 'pretrained' ToyClassifier checkpoint
    (:func:`toy.pretrained_checkpoint`), unlike any random init."""
    from toy import pretrained_checkpoint
    return pretrained_checkpoint(tmp_path)
