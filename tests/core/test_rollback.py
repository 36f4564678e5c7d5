"""Eq. 8/9 (lam_i per layer) and the multi-tensor lerp, against hand values.

Eq. 6 computed in the test for what else a step meets: lam_eff within
lam_i under every schedule, bf16 / fp16 weights (the float32 lerp with
carried rounding), tensors the step left (frozen mid-run, sparse rows),
NaN losses with and without clipping, weights reshaped after theta0
(P4-A7, P4-A8)."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from toy import (TOY_LAYERS, ProbeNet, ToyClassifier, adamw_wrapper_cfg,
                 probe_setup, probe_step, toy_sgd)

import olor_mm  # noqa: F401
from olor_mm import attach_rollback, layerwise_rollback_groups
from olor_mm.core.rollback import (group_by_device_and_dtype,
                                   layerwise_rollback, rollback_)


@pytest.mark.parametrize(
    'iota1,iota2,gamma,n,expected',
    [
        # linear decay, n = 4: 0.01 * (1, .75, .5, .25, 0)
        (0.01, 0.0, 1.0, 4, [0.01, 0.0075, 0.005, 0.0025, 0.0]),
        # with a floor: 0.002 + (1 - i/2) * 0.008
        (0.01, 0.002, 1.0, 2, [0.01, 0.006, 0.002]),
        # gamma = 2: 0.1 * (1 - i/4)^2 = 0.1 * (1, 9/16, 1/4, 1/16, 0)
        (0.1, 0.0, 2.0, 4, [0.1, 0.05625, 0.025, 0.00625, 0.0]),
        # gamma = 0.5 (non-integer; deepest layer stays real): sqrt(1 - i/4)
        (0.1, 0.0, 0.5, 4,
         [0.1, 0.1 * 0.75**0.5, 0.1 * 0.5**0.5, 0.1 * 0.5, 0.0]),
        # gamma = 0: uniform iota1, the deepest layer included
        (0.03, 0.01, 0.0, 3, [0.03, 0.03, 0.03, 0.03]),
        # a single layer (n = 0): iota1
        (0.05, 0.01, 1.0, 0, [0.05]),
    ])
def test_layerwise_rollback_matches_eq9(iota1, iota2, gamma, n, expected):
    got = [layerwise_rollback(i, n, iota1, iota2, gamma) for i in range(n + 1)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert all(isinstance(v, float) for v in got)


def test_layerwise_rollback_is_monotone_in_depth():
    lams = [layerwise_rollback(i, 16, 0.01, 0.001, 1.7) for i in range(17)]
    assert lams[0] == 0.01 and lams[-1] == pytest.approx(0.001)
    assert all(a > b for a, b in zip(lams, lams[1:]))


@pytest.mark.parametrize('kwargs,key', [
    (dict(iota1=1.5, iota2=0.0, gamma=1.0), 'rollback_max'),
    (dict(iota1=0.1, iota2=-0.1, gamma=1.0), 'rollback_min'),
    (dict(iota1=0.1, iota2=0.2, gamma=1.0), 'rollback_min=0.2 > rollback_max'),
    (dict(iota1=0.1, iota2=0.0, gamma=-1.0), 'rollback_power'),
    (dict(iota1=0.1, iota2=0.0, gamma=float('nan')), 'rollback_power'),
])
def test_bad_hyper_parameters_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        layerwise_rollback(0, 2, **kwargs)


def test_layer_index_out_of_range():
    with pytest.raises(ValueError, match='outside'):
        layerwise_rollback(3, 2, 0.1, 0.0, 1.0)


def test_rollback_lerp_closed_form():
    g = torch.Generator().manual_seed(0)
    p = [torch.randn(5, generator=g, dtype=torch.float64) for _ in range(3)]
    a = [torch.randn(5, generator=g, dtype=torch.float64) for _ in range(3)]
    w = [0.0, 0.3, 1.0]
    expected = [pi + wi * (ai - pi) for pi, ai, wi in zip(p, a, w)]
    before0 = p[0].clone()
    rollback_(p, a, w)
    assert torch.equal(p[0], before0)  # w = 0: bit for bit
    torch.testing.assert_close(p[1], expected[1], rtol=0, atol=1e-15)
    assert torch.equal(p[2], a[2])  # w = 1: exactly theta0


def test_rollback_uniform_weight():
    p = [torch.ones(3), torch.zeros(2)]
    rollback_(p, [torch.zeros(3), torch.ones(2)], [0.25, 0.25])
    assert torch.equal(p[0], torch.full((3, ), 0.75))
    assert torch.equal(p[1], torch.full((2, ), 0.25))


def test_group_by_device_and_dtype_keeps_order():
    ts = [
        torch.zeros(1),
        torch.zeros(1, dtype=torch.float64),
        torch.zeros(1),
        torch.zeros(1, dtype=torch.bfloat16)
    ]
    buckets = group_by_device_and_dtype(ts)
    cpu = torch.device('cpu')
    assert buckets == {
        (cpu, torch.float32): [0, 2],
        (cpu, torch.float64): [1],
        (cpu, torch.bfloat16): [3]
    }


def test_rollback_with_narrower_anchors_closed_form():
    g = torch.Generator().manual_seed(0)
    p = [torch.randn(7, generator=g) for _ in range(2)]
    a = [torch.randn(7, generator=g).bfloat16() for _ in range(2)]
    w = [0.1, 0.6]
    expected = [pi + wi * (ai.float() - pi) for pi, ai, wi in zip(p, a, w)]
    rollback_(p, a, w)
    assert all(t.dtype == torch.float32 for t in p)
    for got, exp in zip(p, expected):
        torch.testing.assert_close(got, exp, rtol=0, atol=1e-6)


def _rising_then_falling(opt, kind):
    if kind == 'onecycle':
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.1, total_steps=20)
    if kind == 'restarts':
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=5)
    if kind == 'mmengine-onecycle':
        from mmengine.optim import OneCycleLR
        return OneCycleLR(opt, eta_max=0.1, total_steps=20, by_epoch=False)
    return None  # by hand


@pytest.mark.parametrize(
    'kind', ['onecycle', 'mmengine-onecycle', 'restarts', 'by-hand'])
def test_lam_eff_stays_within_lam_i_for_every_schedule(kind):
    """lr_0 is the largest lr a group has had: lam_eff = lam_i * lr_t /
    lr_0 <= lam_i whatever the schedule, and a weight is never thrown
    past theta0 (a zero-gradient run only ever comes closer to it)."""
    torch.manual_seed(0)
    model = ToyClassifier()
    groups = layerwise_rollback_groups(
        model, rollback_max=0.05, layer_patterns=TOY_LAYERS)
    opt = torch.optim.SGD(groups, lr=0.001 if kind == 'by-hand' else 0.1)
    handle = attach_rollback(opt)
    scheduler = _rising_then_falling(opt, kind)
    weight = model.backbone.conv1.weight
    seen, distances = [], []
    for step in range(20):
        if kind == 'by-hand':  # a warm-up written by hand: x100 in 8 steps
            for g in opt.param_groups:
                g['lr'] = 0.001 * min(100, 1.8**step)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        if step == 1:  # move away from theta0 once, after it is taken
            with torch.no_grad():
                weight.add_(1.0)
        opt.step()
        seen.append([g['lr'] for g in opt.param_groups])
        lams = handle.lam_effs()
        for gi, g in enumerate(opt.param_groups):
            peak = max([g.get('initial_lr', 0)] + [s[gi] for s in seen])
            expected = g['rollback'] * g['lr'] / peak
            assert lams[gi] == pytest.approx(expected, rel=1e-12, abs=0)
            assert 0 <= lams[gi] <= g['rollback'] + 1e-15
        distances.append(float((weight - handle.theta0[0]).norm()))
        if scheduler is not None:
            scheduler.step()
    # the lr did rise (above every earlier lr, or again after a restart)
    assert any(b[0] > a[0] for a, b in zip(seen, seen[1:]))
    assert all(b <= a + 1e-6 for a, b in zip(distances[1:], distances[2:]))


def _nan_step(clip_grad):
    """Two good steps, then one whose loss is NaN in the backbone's stem."""
    torch.manual_seed(0)
    model = ToyClassifier()
    cfg = adamw_wrapper_cfg(optimizer_impl='torch_default')
    cfg['optimizer'] = dict(type='SGD', lr=0.1)
    if clip_grad is not None:
        cfg['clip_grad'] = clip_grad
    ow = build_optim_wrapper(model, cfg)
    x = torch.randn(4, 3, 8, 8)
    y = [*torch.tensor([0, 1, 2, 0])]
    for _ in range(2):
        ow.update_params(model(x, y, mode='loss')['loss'])
    anchor = olor_mm.find_rollback(ow.optimizer)
    theta0 = [t.clone() for t in anchor.theta0]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = model(x, y, mode='loss')['loss'] + \
        model.backbone.conv1.weight.sum() * float('nan')
    return model, ow, anchor, theta0, before, loss


def _finite(t):
    return bool(torch.isfinite(t).all())


def test_nan_loss_without_clipping_spreads_nowhere_but_its_tensor():
    model, ow, anchor, theta0, before, loss = _nan_step(None)
    ow.update_params(loss)
    params = dict(model.named_parameters())
    assert not _finite(params['backbone.conv1.weight'])  # its own NaN grad
    for n, p in params.items():
        if n != 'backbone.conv1.weight':
            assert _finite(p), n  # the rollback spread it nowhere
    for t, t0 in zip(anchor.theta0, theta0):
        assert torch.equal(t, t0) and _finite(t)  # theta0 untouched


def test_nan_loss_with_clipping_is_torchs_to_spread_not_the_rollbacks():
    """clip_grad_norm_ scales every gradient by max_norm / NaN: every
    weight that got a gradient becomes NaN (torch's), theta0 stays finite,
    so the last checkpoint's theta0 is intact."""
    model, ow, anchor, theta0, before, loss = _nan_step(dict(max_norm=1.0))
    ow.update_params(loss)
    assert not any(_finite(p) for p in model.parameters())
    for t, t0 in zip(anchor.theta0, theta0):
        assert torch.equal(t, t0) and _finite(t)


def test_nan_loss_with_error_if_nonfinite_stops_before_any_update():
    model, ow, anchor, theta0, before, loss = _nan_step(
        dict(max_norm=1.0, error_if_nonfinite=True))
    with pytest.raises(RuntimeError, match='non-finite'):
        ow.update_params(loss)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n  # no step, no rollback
    for t, t0 in zip(anchor.theta0, theta0):
        assert torch.equal(t, t0)


def _one_group(model, lam):
    return [dict(params=list(model.parameters()), rollback=lam)]


def _half_spacing(dtype):
    """Half the spacing of ``dtype`` relative to a value's magnitude."""
    return torch.finfo(dtype).eps / 2


def _mlp(dtype):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16,
                                                                4)).to(dtype)


def _batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 8, generator=g), torch.randn(16, 4, generator=g))
            for _ in range(n)]


def _train(model, opt, batches, dtype):
    for x, y in batches:
        opt.zero_grad()
        ((model(x.to(dtype)) - y.to(dtype))**2).mean().backward()
        opt.step()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_weights_follow_the_closed_form(dtype):
    """Weights 1 % to 20 % from theta0 = 1, lam 0.01, 100 steps whose own
    update rounds away: Eq. 6 gives theta0 + d * 0.99 ** 100; each weight
    is within half its spacing of it (before: the pull rounded away until
    the drift reached about 20 % in bf16, 5 % in fp16, e.g. 1.1016 stayed
    1.1016 where Eq. 6 gives 1.0372)."""
    theta0 = torch.ones(184, dtype=dtype)
    w = nn.Parameter(theta0.clone())
    opt = torch.optim.SGD([dict(params=[w], rollback=0.01)], lr=1e-8)
    handle = attach_rollback(opt, scale_with_lr=False)
    handle.snapshot()  # theta0 = 1
    with torch.no_grad():
        w.copy_(1 + torch.linspace(0.01, 0.2, 184))
    start = w.detach().double()
    for _ in range(100):
        w.grad = torch.ones_like(w)
        opt.step()
    expected = 1 + (start - 1) * 0.99**100
    err = (w.detach().double() - expected).abs()
    assert bool((err <= _half_spacing(dtype) * expected + 1e-6).all()), \
        float(err.max())
    assert bool((w.detach().double() < start).all())  # every one moved


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_training_follows_eq6_for_200_steps(dtype):
    """A bf16 (fp16) MLP under SGD with momentum and the rollback, 200
    steps. The reference, in float64: Eq. 6 applied to the exact weight
    ``v`` with the optimizer's own update ``u_t = theta_hat_t - theta_{t-1}``
    (what the step did to the stored weights), ``v_t = (v_{t-1} + u_t) +
    lam * (theta0 - v_{t-1} - u_t)``. The stored weight stays within half
    its spacing of ``v`` at every step; before, the pull was lost wherever
    it was smaller than half a spacing (57 of 184 elements never moved)."""
    model = _mlp(dtype)
    lam = 0.01
    opt = torch.optim.SGD(_one_group(model, lam), lr=0.05, momentum=0.9)
    params = list(model.parameters())
    hat = {}
    # registered before the rollback's: sees theta_hat_t
    opt.register_step_post_hook(lambda o, a, k: hat.update(
        {id(p): p.detach().double().clone()
         for p in params}))
    handle = attach_rollback(opt, scale_with_lr=False)
    theta0 = [p.detach().double().clone() for p in params]
    exact = [p.detach().double().clone() for p in params]
    worst = 0.0
    for x, y in _batches(200):
        before = [p.detach().double().clone() for p in params]
        _train(model, opt, [(x, y)], dtype)
        for p, v, t0, b in zip(params, exact, theta0, before):
            v += hat[id(p)] - b  # the optimizer's update
            v += lam * (t0 - v)  # Eq. 6
            err = (p.detach().double() - v).abs()
            tol = _half_spacing(dtype) * v.abs() * 1.01 + 1e-7
            worst = max(worst, float((err / tol).max()))
    assert worst <= 1.0, worst
    assert handle.theta0 is not None


def test_bf16_resume_continues_bit_for_bit():
    """The rounding carried is saved with theta0: stopped after 30 steps
    and resumed in a new optimizer, 30 more give the uninterrupted run's
    weights exactly."""
    batches = _batches(60, seed=3)

    def build():
        model = _mlp(torch.bfloat16)
        opt = torch.optim.SGD(_one_group(model, 0.01), lr=0.05, momentum=0.9)
        attach_rollback(opt, scale_with_lr=False)
        return model, opt

    model, opt = build()
    _train(model, opt, batches, torch.bfloat16)
    model2, opt2 = build()
    _train(model2, opt2, batches[:30], torch.bfloat16)
    saved = dict(model=model2.state_dict(), optim=opt2.state_dict())
    assert any('olor_rollback.residual' in g for g in saved['optim']
               ['param_groups']), 'the rounding carried is saved'
    model3, opt3 = build()
    model3.load_state_dict(saved['model'])
    opt3.load_state_dict(saved['optim'])
    _train(model3, opt3, batches[30:], torch.bfloat16)
    for p, q in zip(model.parameters(), model3.parameters()):
        assert torch.equal(p, q)


def test_a_layer_frozen_mid_run_with_zeroed_grads_stays_put():
    """``zero_grad(set_to_none=False)``, the stem frozen after 2 steps: its
    gradient is a zero tensor, torch's SGD leaves it as it is, so must the
    rollback (before: moved by 1.7e-2 over 5 steps)."""
    model, opt = toy_sgd()
    attach_rollback(opt)
    stem = model.backbone.conv1.weight
    x = torch.rand(4, 3, 8, 8)
    for step in range(7):
        if step == 2:
            stem.requires_grad_(False)
            frozen = stem.detach().clone()
        opt.zero_grad(set_to_none=False)
        model(x).sum().backward()
        opt.step()
    assert torch.equal(stem.detach(), frozen)


def test_a_zero_gradient_that_momentum_moves_rolls_back_where_it_moved():
    """With momentum torch's SGD still moves a tensor whose gradient is
    zero now: that tensor is updated, and Eq. 6 applies to it."""
    model, opt = toy_sgd(momentum=0.9)
    stem = model.backbone.conv1.weight
    hat = {}
    opt.register_step_post_hook(
        lambda o, a, k: hat.update(w=stem.detach().clone()))
    attach_rollback(opt)
    theta0 = stem.detach().clone()
    x = torch.rand(4, 3, 8, 8)
    for step in range(4):
        if step == 2:
            stem.requires_grad_(False)
        opt.zero_grad(set_to_none=False)
        model(x).sum().backward()
        opt.step()
    assert not torch.equal(hat['w'], theta0)
    torch.testing.assert_close(stem.detach(),
                               hat['w'] + 0.3 * (theta0 - hat['w']))


def test_rows_a_sparse_step_leaves_are_not_rolled_back():
    """SparseAdam updates the rows a batch used; the others stay where they
    are, and so they do under the rollback (before: pulled toward theta0
    at every step); the used rows follow Eq. 6."""
    torch.manual_seed(0)
    emb = nn.Embedding(10, 3, sparse=True)
    opt = torch.optim.SparseAdam([dict(params=[emb.weight], rollback=0.2)],
                                 lr=0.1)
    hat = {}
    opt.register_step_post_hook(
        lambda o, a, k: hat.update(w=emb.weight.detach().clone()))
    attach_rollback(opt, scale_with_lr=False)
    theta0 = emb.weight.detach().clone()
    for rows in ([list(range(10))] + [[1, 2, 2]] * 3):
        opt.zero_grad()
        emb(torch.tensor(rows)).sum().backward()
        opt.step()
        if len(rows) == 10:
            after_first = emb.weight.detach().clone()
    w = emb.weight.detach()
    untouched = [0, 3, 4, 5, 6, 7, 8, 9]
    assert not torch.equal(after_first[untouched], theta0[untouched])
    assert torch.equal(w[untouched], after_first[untouched])
    used = hat['w'][[1, 2]]
    torch.testing.assert_close(w[[1, 2]], used + 0.2 * (theta0[[1, 2]] - used))


@pytest.mark.parametrize('how', ['data', 'set_'])
def test_P4_A7_A8_a_weight_whose_shape_changed_is_named_before_the_step(how):
    """A rolled-back bias widened after theta0 (``p.data = ...``, or
    ``set_``): torch's raw broadcast error came from the rollback, after
    the optimizer's update. Now it is named before the update."""
    torch.manual_seed(0)
    model = ProbeNet()
    opt, handle = probe_setup(model)
    handle.param_names = {id(p): n for n, p in model.named_parameters()}
    probe_step(model, opt)
    bias = model.backbone[0].bias
    with torch.no_grad():
        if how == 'data':
            bias.data = torch.zeros(7)
        else:
            bias.set_(torch.zeros(7))
    bias.grad = torch.ones(7)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(RuntimeError) as err:
        opt.step()
    text = str(err.value)
    assert 'backbone.0.bias' in text and '(7,)' in text and '(6,)' in text
    assert 'add_param_group' in text
    for n, p in model.named_parameters():
        assert torch.equal(p, weights[n]), n
