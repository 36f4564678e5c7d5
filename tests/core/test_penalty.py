"""The L2-SP penalty (paramwise_cfg.method='l2sp'): its gradient by hand,
theta0 and resume, under the plain and the mixed-precision wrapper."""

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from toy import (TOY_LAYERS, ToyClassifier, param_copies, penalty_wrapper_cfg,
                 resumed_runner, toy_runner)

import olor_mm  # noqa: F401
from olor_mm.core.theta0 import find_anchor


class Tiny(nn.Module):
    """One pretrained scalar-ish tensor (backbone) and one new (head)."""

    def __init__(self, w0=(2.0, -1.0), v0=(3.0, )):
        super().__init__()
        self.backbone = nn.Linear(2, 1, bias=False)
        self.head = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.backbone.weight.copy_(torch.tensor([w0], dtype=torch.double))
            self.head.weight.copy_(torch.tensor([v0], dtype=torch.double))


def l2sp_cfg(optimizer, alpha=0.5, beta=0.2, **kwargs):
    return penalty_wrapper_cfg('l2sp', optimizer, alpha, beta, **kwargs)


def _sum_loss(model):
    """loss = sum of all weights: every gradient is exactly 1."""
    return sum(p.sum() for p in model.parameters())


def test_sgd_steps_match_a_hand_computation():
    model = Tiny().double()
    ow = build_optim_wrapper(model, l2sp_cfg(dict(type='SGD', lr=0.1)))
    for _ in range(2):
        ow.update_params(_sum_loss(model))
    # eta = 0.1, alpha = 0.5, beta = 0.2, g = 1 everywhere.
    # pretrained w (w0 = 2): w1 = 2 - 0.1 * (1 + 0.5 * 0) = 1.9
    #                        w2 = 1.9 - 0.1 * (1 + 0.5 * (1.9 - 2)) = 1.805
    # (w0 = -1): w1 = -1.1;  w2 = -1.1 - 0.1 * (1 + 0.5 * -0.1) = -1.195
    # new v (v0 = 3, no anchor): v1 = 3 - 0.1 * (1 + 0.2 * 3) = 2.84
    #                            v2 = 2.84 - 0.1 * (1 + 0.2 * 2.84) = 2.6832
    torch.testing.assert_close(
        model.backbone.weight.detach(),
        torch.tensor([[1.805, -1.195]], dtype=torch.double),
        rtol=0,
        atol=1e-12)
    torch.testing.assert_close(
        model.head.weight.detach(),
        torch.tensor([[2.6832]], dtype=torch.double),
        rtol=0,
        atol=1e-12)


def test_adamw_equals_autograd_of_the_penalised_loss():
    """The gradient term == autograd of loss + alpha/2 ||w-w0||^2 + ..."""
    torch.manual_seed(0)
    a, b = ToyClassifier().double(), ToyClassifier().double()
    b.load_state_dict(a.state_dict())
    opt = dict(type='AdamW', lr=1e-2, weight_decay=0.0)
    alpha, beta = 0.3, 0.05
    ow = build_optim_wrapper(a, l2sp_cfg(opt, alpha, beta))
    ref = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.0)
    w0 = {n: p.detach().clone() for n, p in b.named_parameters()}
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.double)
        y = torch.randint(0, 3, (4, ), generator=g)
        ow.update_params(a(x, [*y], mode='loss')['loss'])
        loss = b(x, [*y], mode='loss')['loss']
        for n, p in b.named_parameters():
            if n.startswith('backbone.'):
                loss = loss + alpha / 2 * (p - w0[n]).pow(2).sum()
            else:
                loss = loss + beta / 2 * p.pow(2).sum()
        ref.zero_grad()
        loss.backward()
        ref.step()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12, msg=n)
    assert find_anchor(ow.optimizer).penalty() == pytest.approx(
        alpha / 2 * sum(
            float((q - w0[n]).detach().pow(2).sum())
            for n, q in b.named_parameters() if n.startswith('backbone.')) +
        beta / 2 * sum(
            float(q.detach().pow(2).sum())
            for n, q in b.named_parameters() if not n.startswith('backbone.')),
        rel=1e-9)


def test_accumulation_adds_the_penalty_once_per_update():
    model = Tiny().double()
    ow = build_optim_wrapper(
        model, l2sp_cfg(dict(type='SGD', lr=0.1), accumulative_counts=2))
    ow.initialize_count_status(model, 0, 2)
    for _ in range(2):
        ow.update_params(_sum_loss(model))
    # one update with the mean gradient 1 and the penalty at w = w0:
    # v = 3 - 0.1 * (1 + 0.2 * 3) = 2.84, w = w0 - 0.1
    torch.testing.assert_close(
        model.head.weight.detach(),
        torch.tensor([[2.84]], dtype=torch.double),
        rtol=0,
        atol=1e-12)
    torch.testing.assert_close(
        model.backbone.weight.detach(),
        torch.tensor([[1.9, -1.1]], dtype=torch.double),
        rtol=0,
        atol=1e-12)


@pytest.mark.parametrize('key, value', [('alpha', -0.1), ('beta', 'x'),
                                        ('alpha', float('inf'))])
def test_bad_coefficients_fail_at_build(key, value):
    cfg = l2sp_cfg(dict(type='SGD', lr=0.1))
    cfg['paramwise_cfg'][key] = value
    with pytest.raises(ValueError, match=f'paramwise_cfg.{key}'):
        build_optim_wrapper(Tiny(), cfg)


def test_the_former_wrapper_type_without_the_constructor_names_the_fix():
    """``type='L2SPOptimWrapper'`` needs the constructor (it always did):
    without it, the deprecated name says what to write."""
    cfg = dict(type='L2SPOptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    with pytest.raises(
            ValueError,
            match="constructor='LayerwiseRollbackConstructor'.*"
            "method='l2sp'"):
        build_optim_wrapper(Tiny(), cfg)


def _wrapper(alpha=1.0, beta=0.01):
    return dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.0),
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=dict(
            method='l2sp',
            alpha=alpha,
            beta=beta,
            rollback_max=0.1,  # the OLOR block's key: unused by L2-SP
            layer_patterns=TOY_LAYERS))


@pytest.mark.exact_resume
def test_theta0_is_loaded_saved_and_restored_on_resume(tmp_path,
                                                       toy_pretrained):
    path, pretrained = toy_pretrained
    straight = toy_runner(tmp_path / 'straight', _wrapper(), load_from=path)
    straight.train()
    names = [
        n for n, _ in straight.model.named_parameters()
        if n.startswith('backbone.')
    ]
    # every pretrained tensor is anchored, the deepest layer too
    theta0 = find_anchor(straight.optim_wrapper.optimizer).theta0
    assert len(theta0) == len(names)
    for n, t0 in zip(names, theta0):
        assert torch.equal(t0, pretrained[n]), n

    first = toy_runner(
        tmp_path / 'split', _wrapper(), max_iters=3, load_from=path)
    first.train()
    second = resumed_runner(tmp_path / 'split', _wrapper(),
                            tmp_path / 'split' / 'iter_3.pth')
    second.train()
    for n, t0 in zip(names,
                     find_anchor(second.optim_wrapper.optimizer).theta0):
        assert torch.equal(t0, pretrained[n]), n  # restored, not re-taken
    a, b = param_copies(straight), param_copies(second)
    for n in a:
        assert torch.equal(a[n], b[n]), n


def test_l2sp_keeps_the_backbone_closer_than_plain_adamw(
        tmp_path, toy_pretrained):
    path, pretrained = toy_pretrained
    drift = {}
    plain = _wrapper(alpha=0.0, beta=0.0)
    for tag, wrapper in (('l2sp', _wrapper()), ('plain', plain)):
        runner = toy_runner(tmp_path / tag, wrapper, load_from=path)
        runner.train()
        drift[tag] = sum((p - pretrained[n]).norm()**2
                         for n, p in runner.model.named_parameters()
                         if n.startswith('backbone.'))**0.5
    assert drift['l2sp'] < drift['plain']


@pytest.mark.parametrize('clip', [None, dict(max_norm=0.5)])
def test_amp_wrapper_follows_the_fp32_rule_after_clipping(clip):
    """Under the mixed-precision wrapper (static scale 1024, CPU) L2-SP
    steps as under the plain one, and both follow the rule by hand.

    The loss is a sum of weights, so autocast changes nothing and every
    loss gradient is exactly 1. The penalty is added by the optimizer's
    step pre-hook, to the gradients the optimizer uses: after the wrapper
    clipped the loss gradient (and after the scaler unscaled it)::

        g = clip(1) + alpha * (w - w0)   (pretrained),  clip(1) + beta * v
    """
    out = {}
    for kind in ('OptimWrapper', 'AmpOLOROptimWrapper'):
        model = Tiny().double()
        extra = dict(loss_scale=1024.) if kind.startswith('Amp') else {}
        cfg = l2sp_cfg(
            dict(type='SGD', lr=0.1), wrapper=kind, clip_grad=clip, **extra)
        ow = build_optim_wrapper(model, cfg)
        for _ in range(3):
            with ow.optim_context(model):
                loss = _sum_loss(model)
            ow.update_params(loss)
        out[kind] = [p.detach().clone() for p in model.parameters()]
    for a, b in zip(out['OptimWrapper'], out['AmpOLOROptimWrapper']):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # by hand: torch's clip_grad_norm_ scales by max_norm / (norm + 1e-6)
    # when the total norm (sqrt(3): three weights of gradient 1) exceeds it
    c = 1.0 if clip is None else 0.5 / (3**0.5 + 1e-6)
    w0 = torch.tensor([[2.0, -1.0]], dtype=torch.double)
    w, v = w0.clone(), torch.tensor([[3.0]], dtype=torch.double)
    for _ in range(3):
        w, v = w - 0.1 * (c + 0.5 * (w - w0)), v - 0.1 * (c + 0.2 * v)
    torch.testing.assert_close(out['OptimWrapper'][0], w, rtol=0, atol=1e-12)
    torch.testing.assert_close(out['OptimWrapper'][1], v, rtol=0, atol=1e-12)


def test_the_former_spelling_is_rewritten_with_a_warning(caplog):
    """``type='L2SPOptimWrapper'`` with ``alpha`` / ``beta`` at the wrapper
    level (olor-mm 0.2's spelling) builds the same optimizer and penalty as
    ``paramwise_cfg.method='l2sp'``, and says what to write instead."""
    import logging

    from mmengine.logging import MMLogger
    from mmengine.optim import OptimWrapper

    from olor_mm.core.penalty import L2SPAnchor
    former = dict(
        type='L2SPOptimWrapper',
        alpha=0.5,
        beta=0.2,
        optimizer=dict(type='SGD', lr=0.1),
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=dict(pretrained_prefixes=('backbone', )))
    logger = MMLogger.get_current_instance()
    with caplog.at_level(logging.WARNING):
        logger.addHandler(caplog.handler)
        try:
            old = build_optim_wrapper(Tiny().double(), former)
        finally:
            logger.removeHandler(caplog.handler)
    assert type(old) is OptimWrapper
    anchor = find_anchor(old.optimizer)
    assert isinstance(anchor, L2SPAnchor)
    assert (anchor.alpha, anchor.beta) == (0.5, 0.2)
    assert "type='OptimWrapper' with optim_wrapper.paramwise_cfg." \
        "method='l2sp'" in caplog.text
    assert 'optim_wrapper.paramwise_cfg.alpha' in caplog.text
    # the same steps as the current spelling
    a, b = Tiny().double(), Tiny().double()
    new = build_optim_wrapper(b, l2sp_cfg(dict(type='SGD', lr=0.1)))
    old = build_optim_wrapper(a, former)
    for _ in range(2):
        old.update_params(_sum_loss(a))
        new.update_params(_sum_loss(b))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
