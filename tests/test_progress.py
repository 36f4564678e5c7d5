"""Progress on screen for long jobs (olor_mm_tools/progress.py)."""
import subprocess
import sys

import pytest

from olor_mm_tools.progress import parse_progress, train_with_progress

FAKE_TRAINING = '''
import sys, time
for i in range(1, 4):
    print(f'11/29 - mmengine - INFO - Iter(train) [{i}/3]  lr: 1e-3  '
          f'eta: 0:00:0{3 - i}  time: 0.1  loss: {1.0 / i:.4f}', flush=True)
    time.sleep(0.3)
sys.exit(int(sys.argv[1]))
'''


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
