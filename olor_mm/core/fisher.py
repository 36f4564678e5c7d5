"""The diagonal empirical Fisher information of EWC (plain torch).

Elastic weight consolidation (Kirkpatrick et al., PNAS 2017) weighs the
pull of each weight toward its pretrained value by how much the upstream
task's loss depends on it: the diagonal of the Fisher information, here
estimated on ``N`` mini-batches of the upstream data at ``theta0``::

    F_i = 1/N * sum_{b=1..N} (dL_b / dtheta_i)^2        (at theta = theta0)

with ``L_b`` the loss of batch ``b`` (the mini-batch empirical Fisher: one
gradient per batch, as detection and segmentation models compute their
losses per batch; a per-sample Fisher would cost a backward pass per
image). :func:`normalize_fisher` divides ``F`` by its mean over the
anchored weights, so that EWC's ``alpha`` reads like L2-SP's (EWC with
``F = 1`` everywhere is L2-SP).
"""
import logging
import random
from contextlib import contextmanager
from typing import Callable, Iterable, List, Sequence

import torch
from torch import nn

logger = logging.getLogger(__name__)


@contextmanager
def unchanged_model_and_rng(model: nn.Module):
    """Run a side computation (the Fisher's forward and backward passes)
    without touching what the fine-tuning does next: the model's buffers
    (BatchNorm statistics), its train / eval mode and gradients, and the
    random streams of torch, numpy and Python are as they were after it."""
    import numpy as np
    buffers = {k: b.detach().clone() for k, b in model.named_buffers()}
    modes = {m: m.training for m in model.modules()}
    grads = {p: p.grad for p in model.parameters()}
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        devices = list(range(torch.cuda.device_count()))
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        with torch.no_grad():
            for k, b in model.named_buffers():
                if k in buffers:
                    b.copy_(buffers[k])
        for m, training in modes.items():
            m.train(training)
        for p, g in grads.items():
            p.grad = g


def diagonal_fisher(params: Sequence[torch.Tensor],
                    losses: Iterable[torch.Tensor]) -> List[torch.Tensor]:
    """``F_i = mean_b (dL_b / dtheta_i)^2`` over the losses of ``losses``.

    Args:
        params: The tensors to estimate ``F`` for (requires_grad).
        losses: One scalar loss per mini-batch (each built from ``params``
            by the caller's forward pass; a generator keeps one graph alive
            at a time).

    Returns:
        list[Tensor]: ``F`` per tensor of ``params`` (float32 or the
        parameter's wider dtype), zero where no loss depends on it.

    Raises:
        ValueError: when ``losses`` is empty or a loss is not finite.
    """
    fisher = [
        torch.zeros_like(p, dtype=torch.promote_types(p.dtype, torch.float32))
        for p in params
    ]
    # a frozen tensor never moves: its F stays 0 (it is never used)
    trained = [k for k, p in enumerate(params) if p.requires_grad]
    n = 0
    for loss in losses:
        if not bool(torch.isfinite(loss)):
            raise ValueError(
                f'EWC: the loss of Fisher batch {n} is '
                f'{float(loss.detach())}: the upstream model does not fit '
                'the Fisher data (check fisher_dataloader and '
                'fisher_model).')
        grads = torch.autograd.grad(
            loss, [params[k] for k in trained], allow_unused=True)
        have = [(k, g) for k, g in zip(trained, grads) if g is not None]
        if have:
            g = [g.to(fisher[k].dtype) for k, g in have]
            torch._foreach_addcmul_([fisher[k] for k, _ in have], g, g)
        n += 1
    if n == 0:
        raise ValueError('EWC: no Fisher batch was drawn (fisher_batches '
                         'must be >= 1 and the dataloader not empty).')
    torch._foreach_div_(fisher, float(n))
    return fisher


def check_fisher_covers(owner: str, params: Sequence[torch.Tensor],
                        fisher: dict) -> None:
    """``fisher`` (``{id(param): F}``) has an ``F`` of its shape for every
    trainable tensor of ``params`` (a frozen one may lack it: it never
    moves).

    Raises:
        ValueError: naming the count and shapes missing, or the first
            shape that differs.
    """
    missing = [p for p in params if id(p) not in fisher and p.requires_grad]
    if missing:
        raise ValueError(f'{owner}: no Fisher information for {len(missing)} '
                         f'anchored tensors (shapes '
                         f'{[tuple(p.shape) for p in missing[:3]]}...).')
    bad = [(p, fisher[id(p)]) for p in params
           if id(p) in fisher and fisher[id(p)].shape != p.shape]
    if bad:
        raise ValueError(f'{owner}: a Fisher tensor has shape '
                         f"{tuple(bad[0][1].shape)}, its parameter's is "
                         f'{tuple(bad[0][0].shape)}.')


def zeros_for_joined(owner: str,
                     params: Sequence[torch.Tensor],
                     table: dict,
                     symbol: str,
                     dtype_of: Callable = lambda p: p.dtype) -> bool:
    """Zeros in ``table`` (``{id(param): tensor}``, made from the Fisher at
    the first step) for the tensors of ``params`` that joined the optimizer
    later (``add_param_group``): the upstream Fisher was estimated without
    them, so they get no pull toward theta0; one warning says how many.

    Returns:
        bool: whether any tensor joined (the caller drops what it cached
        per bucket).
    """
    joined = [p for p in params if id(p) not in table]
    for p in joined:
        table[id(p)] = torch.zeros_like(p, dtype=dtype_of(p))
    if joined:
        logger.warning(
            '%s: %d tensors joined after the Fisher information was '
            'estimated: %s = 0 for them (no pull toward theta0).', owner,
            len(joined), symbol)
    return bool(joined)


def normalize_fisher(fisher: List[torch.Tensor]) -> float:
    """Divide ``fisher`` in place by its mean over all entries; returns
    that mean (the raw scale, for the log).

    Raises:
        ValueError: when every entry is zero (no loss reaches a weight).
    """
    total = sum(float(f.sum()) for f in fisher)
    count = sum(f.numel() for f in fisher)
    mean = total / max(count, 1)
    if not mean > 0:
        raise ValueError(
            'EWC: the Fisher information is zero on every anchored weight: '
            'no upstream loss reaches the pretrained weights (are they '
            'frozen, or is fisher_model another model?).')
    torch._foreach_div_(fisher, mean)
    return mean


def mmengine_losses(model: nn.Module, batches: Iterable,
                    num_batches: int) -> Iterable[torch.Tensor]:
    """The total loss of each of the first ``num_batches`` batches of an
    MMEngine model (``data_preprocessor`` -> ``mode='loss'`` ->
    ``parse_losses``), in train mode, as ``train_step`` computes it."""
    model.train()
    for k, batch in enumerate(batches):
        if k >= num_batches:
            return
        data = model.data_preprocessor(batch, True)
        parsed, _ = model.parse_losses(model(**data, mode='loss'))
        yield parsed


def fisher_by_name(model: nn.Module, batches: Iterable, num_batches: int,
                   names: Callable[[str, torch.Tensor], bool]) -> dict:
    """``{name: F}`` of the parameters of an MMEngine ``model`` that
    ``names(name, param)`` selects, over ``num_batches`` batches; the
    model's buffers, modes, gradients and random streams are unchanged
    afterwards (:func:`unchanged_model_and_rng`)."""
    model = getattr(model, 'module', model)
    chosen = [(n, p) for n, p in model.named_parameters() if names(n, p)]
    if not chosen:
        return {}
    with unchanged_model_and_rng(model):
        fisher = diagonal_fisher([p for _, p in chosen],
                                 mmengine_losses(model, batches, num_batches))
    return {n: f for (n, _), f in zip(chosen, fisher)}
