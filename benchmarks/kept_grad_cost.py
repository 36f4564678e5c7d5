"""What the rollback's check of all-zero gradients costs per step.

A tensor whose step may leave it unchanged rolls back only where the step
changed it (olor_mm.core.attach). Only a gradient kept across steps
(``zero_grad(set_to_none=False)``, or a gradient set once and stepped
again, as ``bench_step.py`` does) can be all zero after a backward, so only
such gradients get the check: one norm pass over them. A fresh gradient per
step (torch's and MMEngine's default ``set_to_none=True``) gets none.

Times ``optimizer.step()`` of AdamW (foreach) over 28.4 M float32
parameters (ResNet-50-like tensors), without and with the rollback,
alternating, median of 20 steps after 5, three repeats: for fresh
gradients (assigned before each timed step) and for kept ones::

    python benchmarks/kept_grad_cost.py
"""
import statistics
import time

import torch
import torch.nn as nn

from olor_mm import attach_rollback

SHAPES = [(256, 256, 3, 3)] * 30 + [(512, 512)] * 40 + [(2048, )] * 90


def step_ms(params, rollback: bool, fresh: bool) -> float:
    ps = [nn.Parameter(p.detach().clone()) for p in params]
    opt = torch.optim.AdamW(
        [dict(params=ps, rollback=0.01 if rollback else 0.0)],
        lr=1e-3,
        foreach=True)
    if rollback:
        attach_rollback(opt)
    grads = [torch.randn_like(p) * 1e-3 for p in ps]
    times = []
    for i in range(25):
        if fresh or i == 0:
            for p, g in zip(ps, grads):
                p.grad = g.clone() if fresh else g
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[5:]) * 1e3


def main() -> None:
    torch.manual_seed(0)
    params = [torch.randn(s) * 0.02 for s in SHAPES]
    count = sum(p.numel() for p in params) / 1e6
    for fresh in (True, False):
        plain, olor = [], []
        for _ in range(3):
            plain.append(step_ms(params, False, fresh))
            olor.append(step_ms(params, True, fresh))
        p, o = statistics.median(plain), statistics.median(olor)
        kind = 'fresh gradients' if fresh else 'gradients kept across steps'
        print(f'{kind}: {count:.1f} M parameters, AdamW {p:.1f} ms, '
              f'with the rollback {o:.1f} ms (+{o - p:.1f} ms)')


if __name__ == '__main__':
    main()
