"""Progress on screen for long jobs: a bar per training, the log path.

``train_with_progress(cmd, log_path, label)`` runs a ``tools/train.py``
command as a subprocess with its output in ``log_path`` and, while it runs,
shows one progress bar (tqdm) built from the log's ``Iter(train)`` /
``Epoch(train)`` lines: iterations done, loss, MMEngine's time left, and
where the log is. ``bar(total, label)`` is the bar for loops of the
benchmarks. On a terminal the bar redraws in place; in a CI log it prints a
line every ``NON_TTY_INTERVAL`` seconds.

Why the log is parsed: the demo runs the user-facing ``tools/train.py``
command, so the training runs in another process, and MMEngine has no
cross-process progress API (its hooks and ``MessageHub`` live in the
training process); its log lines are the only progress that process
reports. A training in this process uses :func:`progress_hook` instead.
The bar is advanced with ``tqdm.update`` by the iterations done since the
last line, so that tqdm's own rate and time left are right.
"""
import re
import subprocess
import sys
import time
from typing import Optional

from tqdm import tqdm

#: seconds between two progress lines when stderr is not a terminal
NON_TTY_INTERVAL = 30.0

_ITER = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')
_EPOCH = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')
_FIELD = re.compile(r'\b(eta|loss):\s*([0-9.:e+-]+)')


def bar(total: int, label: str, unit: str = 'it', initial: int = 0) -> tqdm:
    """A tqdm bar on stderr, quiet enough for CI logs; ``initial``: what
    was done before it started (left out of its rate)."""
    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        initial=initial,
        desc=label,
        unit=unit,
        dynamic_ncols=True,
        mininterval=0.5 if tty else NON_TTY_INTERVAL,
        file=sys.stderr,
        leave=True)


def parse_progress(line: str, max_epochs: Optional[int] = None):
    """(done, total, fields) of an MMEngine training log line, or None.

    Epoch-based lines count iterations over all epochs when ``max_epochs``
    is known (``[e][i/n]`` -> ``(e-1)*n + i`` of ``max_epochs*n``).
    """
    m = _ITER.search(line)
    if m:
        done, total = int(m.group(1)), int(m.group(2))
    else:
        m = _EPOCH.search(line)
        if not m:
            return None
        epoch, i, n = (int(g) for g in m.groups())
        epochs = max_epochs or epoch
        done, total = (epoch - 1) * n + i, epochs * n
    return done, total, dict(_FIELD.findall(line))


def train_with_progress(cmd,
                        log_path: str,
                        label: str,
                        cwd=None,
                        max_epochs: Optional[int] = None,
                        poll: float = 1.0) -> None:
    """Run ``cmd`` (a training) with its output in ``log_path`` and a bar.

    Raises:
        subprocess.CalledProcessError: if the training fails; the message
            names the log to read.
    """
    progress = None
    seen, pending = 0, b''
    with open(log_path, 'wb') as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            while True:
                finished = proc.poll() is not None
                with open(log_path, 'rb') as f:
                    f.seek(seen)
                    data = f.read()
                seen += len(data)
                *lines, pending = (pending + data).split(b'\n')
                for line in lines:
                    line = line.decode(errors='replace')
                    parsed = parse_progress(line, max_epochs)
                    if parsed is None:
                        continue
                    done, total, fields = parsed
                    if progress is None:
                        # the iterations before the first line (and the
                        # set-up) are not timed: the bar starts at them
                        progress = bar(total, label, initial=done)
                    if total != progress.total:  # epochs, max_epochs unknown
                        progress.total = total
                    progress.update(done - progress.n)
                    shown = ', '.join(f'{k} {v}' for k, v in fields.items())
                    progress.set_postfix_str(f'{shown}  log: {log_path}')
                if finished:
                    break
                time.sleep(poll)
        finally:
            if proc.poll() is None:
                proc.kill()
            if progress is not None:
                progress.close()
    if proc.returncode:
        raise subprocess.CalledProcessError(
            proc.returncode, cmd, output=f'see the log: {log_path}')


def progress_hook(label: str, log_path: Optional[str] = None):
    """An MMEngine hook that draws a bar of an in-process training.

    Iterations done of ``train_loop.max_iters``, the smoothed loss, the time
    left (tqdm's estimate), and where the log is.
    """
    from mmengine.hooks import Hook

    class ProgressHook(Hook):
        priority = 'VERY_LOW'

        def before_train(self, runner):
            # a resumed run starts at its iteration, left out of the rate
            self.bar = bar(runner.max_iters, label, initial=runner.iter)

        def after_train_iter(self,
                             runner,
                             batch_idx,
                             data_batch=None,
                             outputs=None):
            self.bar.update(runner.iter + 1 - self.bar.n)
            loss = runner.message_hub.get_scalar('train/loss')
            where = f'  log: {log_path}' if log_path else ''
            self.bar.set_postfix_str(
                f'loss {loss.current():.4f}{where}' if loss else where)

        def after_train(self, runner):
            self.bar.close()

    return ProgressHook()
