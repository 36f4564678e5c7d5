"""Progress on screen for long jobs (olor_mm/tools/progress.py)."""
import math
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from olor_mm.tools import progress
from olor_mm.tools.progress import parse_progress, train_with_progress

FAKE_TRAINING = '''
import sys, time
for i in range(1, 4):
    print(f'11/29 - mmengine - INFO - Iter(train) [{i}/3]  lr: 1e-3  '
          f'eta: 0:00:0{3 - i}  time: 0.1  loss: {1.0 / i:.4f}', flush=True)
    time.sleep(0.3)
sys.exit(int(sys.argv[1]))
'''

#: a log whose first line comes after 1000 iterations (the set-up, a long
#: logging interval), then 10 iterations per 0.2 s: at most 50 it/s
FAST_START = '''
import time
for i in (1000, 1010, 1020):
    print(f'Iter(train) [{i}/1020]  eta: 0:00:01  loss: 0.5', flush=True)
    time.sleep(0.2)
'''


def _recording(monkeypatch):
    """The bars ``progress.bar`` makes, with ``format_dict`` as they
    closed."""
    made = []
    make = progress.bar

    def recording_bar(*args, **kwargs):
        made.append(make(*args, **kwargs))
        close = made[-1].close

        def close_and_record(bar=made[-1]):
            bar.closed_with = dict(bar.format_dict)
            close()

        made[-1].close = close_and_record
        return made[-1]

    monkeypatch.setattr(progress, 'bar', recording_bar)
    return made


def _rate(state):
    """tqdm's rate as it shows it: the smoothed one, else the average
    since the bar started."""
    if state['rate'] is not None:
        return state['rate']
    return (state['n'] - state['initial']) / state['elapsed']


def test_parse_iteration_and_epoch_lines():
    assert parse_progress('Iter(train) [ 350/600]  eta: 0:01:10  '
                          'time: 0.2  loss: 0.8123') == (350, 600,
                                                         dict(
                                                             eta='0:01:10',
                                                             loss='0.8123'))
    done, total, _ = parse_progress(
        'Epoch(train)  [2][ 5/10]  loss: 2.5', max_epochs=12)
    assert (done, total) == (15, 120)
    assert parse_progress('Epoch(val) [1][2/2]  coco/bbox_mAP: 0.1') is None


def test_a_training_shows_its_bar_and_keeps_its_log(tmp_path, capsys):
    script = tmp_path / 'train.py'
    script.write_text(FAKE_TRAINING)
    log = str(tmp_path / 'run.log')
    train_with_progress([sys.executable, str(script), '0'],
                        log,
                        'fine-tune',
                        poll=0.1)
    err = capsys.readouterr().err
    assert 'fine-tune' in err and '3/3' in err and f'log: {log}' in err
    assert 'loss 0.3333' in err
    assert open(log).read().count('Iter(train)') == 3


def test_a_failed_training_names_its_log(tmp_path):
    script = tmp_path / 'train.py'
    script.write_text(FAKE_TRAINING)
    log = str(tmp_path / 'run.log')
    with pytest.raises(subprocess.CalledProcessError) as err:
        train_with_progress([sys.executable, str(script), '3'],
                            log,
                            'x',
                            poll=0.1)
    assert err.value.returncode == 3 and log in err.value.output


def test_the_bar_counts_and_its_rate_is_the_trainings(tmp_path, capsys,
                                                      monkeypatch):
    """The bar advances by the iterations between log lines (tqdm's
    update): its rate is that of the training, not the 1000 iterations of
    the first line over the instant since the bar appeared."""
    made = _recording(monkeypatch)
    script = tmp_path / 'train.py'
    script.write_text(FAST_START)
    train_with_progress([sys.executable, str(script)],
                        str(tmp_path / 'run.log'),
                        'fine-tune',
                        poll=0.05)
    (bar, ) = made
    state = bar.closed_with
    assert (state['n'], state['total'], state['initial']) == (1020, 1020, 1000)
    assert math.isfinite(_rate(state)) and 0 < _rate(state) <= 100
    shown = re.findall(r'([0-9.]+)it/s', capsys.readouterr().err)
    assert shown and 0 < float(shown[-1]) <= 100


def test_the_in_process_hook_counts_from_a_resumed_iteration():
    hub = SimpleNamespace(get_scalar=lambda key: None)
    runner = SimpleNamespace(iter=5, max_iters=20, message_hub=hub)
    hook = progress.progress_hook('train')
    hook.before_train(runner)
    for runner.iter in range(5, 8):
        hook.after_train_iter(runner, runner.iter)
    state = dict(hook.bar.format_dict)
    hook.after_train(runner)
    assert (state['n'], state['total'], state['initial']) == (8, 20, 5)
    assert math.isfinite(_rate(state)) and _rate(state) > 0
