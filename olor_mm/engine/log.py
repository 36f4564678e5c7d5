"""olor-mm's log lines in MMEngine's log, when MMEngine runs.

The plain-PyTorch modules log through ``logging.getLogger('olor_mm.*')``.
Under MMEngine, whose runs write their own log files, those records are
handed to MMEngine's current logger instead, so that a warning such as the
resume notice lands in the run's log next to MMEngine's lines.
"""
import logging

from mmengine.logging import print_log


class _ToMMEngine(logging.Handler):

    def emit(self, record: logging.LogRecord) -> None:
        print_log(self.format(record), logger='current', level=record.levelno)


def forward_to_mmengine() -> None:
    """Route the ``olor_mm`` loggers to MMEngine's current logger.

    Idempotent.
    """
    root = logging.getLogger('olor_mm')
    if any(isinstance(h, _ToMMEngine) for h in root.handlers):
        return
    root.addHandler(_ToMMEngine())
    root.propagate = False
