"""OLOROptimWrapper against closed forms and against optimizer + lerp; the
L2-SP wrapper with an OLOR key (misuse probe B12)."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.optim import (LinearLR, MultiStepLR, OptimWrapper,
                            build_optim_wrapper)
from toy import TOY_LAYERS, ToyClassifier, olor_wrapper_cfg

import olor_mm  # noqa: F401  (registers the wrapper and constructor)
from olor_mm.core.penalty import L2SPAnchor
from olor_mm.core.theta0 import find_anchor, saved_theta0


class Linear2(nn.Module):
    """``backbone`` (pretrained, 2 layers) and ``head`` (new)."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
        self.head = nn.Linear(3, 1)


def _fixed_grad_loss(model, coeffs):
    """loss = sum_k <c_k, p_k>: the gradient of p_k is exactly c_k."""
    return sum((p * c).sum() for p, c in zip(model.parameters(), coeffs))


def _build(model, optimizer, **paramwise):
    # the references below run torch's default (single-tensor) update on
    # MMEngine's layout (one group per parameter); the merged groups and the
    # kernel the constructor picks otherwise are tested in test_kernels.py
    paramwise.setdefault('optimizer_impl', 'torch_default')
    paramwise.setdefault('merge_groups', False)
    return build_optim_wrapper(model, olor_wrapper_cfg(optimizer, **paramwise))


def test_sgd_equals_eq6_by_hand():
    torch.manual_seed(0)
    model = Linear2().double()
    theta0 = [p.detach().clone() for p in model.parameters()]
    coeffs = [torch.randn_like(p) for p in model.parameters()]
    eta, iota1 = 0.1, 0.3
    ow = _build(
        model,
        dict(type='SGD', lr=eta),
        rollback_max=iota1,
        rollback_min=0.0,
        rollback_power=1.0)
    # backbone.0.* is layer 0 (lam = iota1), backbone.1.* layer 1 (lam = 0):
    # n = 1, so lam_1 = 0 and only backbone.0 rolls back.
    lam = [iota1, iota1, 0.0, 0.0, 0.0, 0.0]
    expect = [t.clone() for t in theta0]
    for _ in range(4):
        ow.update_params(_fixed_grad_loss(model, coeffs))
        # Eq. 6: theta_t = (1 - lam) (theta_{t-1} - eta g) + lam theta0
        expect = [(1 - l) * (e - eta * c) + l * t0
                  for e, c, l, t0 in zip(expect, coeffs, lam, theta0)]
    for p, e in zip(model.parameters(), expect):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-14)


def _train(model, ow, steps=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(4, 3, 8, 8, generator=g)
        y = torch.randint(0, 3, (4, ), generator=g)
        ow.update_params(model(x, [*y], mode='loss')['loss'])


def test_zero_rollback_is_the_plain_optimizer_bit_for_bit():
    torch.manual_seed(0)
    a = ToyClassifier()
    b = copy.deepcopy(a)
    opt = dict(type='AdamW', lr=1e-2, weight_decay=0.05)
    ow_a = _build(a, opt, rollback_max=0.0, rollback_min=0.0)
    ow_b = build_optim_wrapper(b, dict(type='OptimWrapper', optimizer=opt))
    _train(a, ow_a)
    _train(b, ow_b)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_full_rollback_returns_every_pretrained_tensor_to_theta0():
    torch.manual_seed(0)
    model = ToyClassifier()
    backbone0 = copy.deepcopy(model.backbone.state_dict())
    head0 = model.head.weight.detach().clone()
    ow = _build(
        model,
        dict(type='SGD', lr=0.5, momentum=0.9),
        rollback_max=1.0,
        rollback_min=1.0)
    _train(model, ow)
    for name, p in model.backbone.named_parameters():
        assert torch.equal(p, backbone0[name]), name
    assert not torch.equal(model.head.weight, head0)  # the head trained


OPTIMIZERS = [
    dict(type='SGD', lr=0.1),
    dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True),
    dict(type='Adam', lr=1e-2),
    dict(type='AdamW', lr=1e-2, weight_decay=0.05),
]


@pytest.mark.parametrize('optimizer', OPTIMIZERS, ids=lambda o: o['type'])
def test_equals_optimizer_then_explicit_lerp(optimizer):
    """Each step: the same optimizer, then p.lerp_(theta0, lam_i) by hand."""
    torch.manual_seed(0)
    model = ToyClassifier(blocks=(1, 2))
    ref = copy.deepcopy(model)
    ow = _build(
        model,
        optimizer,
        rollback_max=0.2,
        rollback_min=0.05,
        rollback_power=1.5,
        layer_patterns=TOY_LAYERS)
    ref_opt = getattr(torch.optim, optimizer['type'])(ref.parameters(), **{
        k: v
        for k, v in optimizer.items() if k != 'type'
    })
    # toy backbone layers: stem (0), layer1.0 (1), layer2.0 (2), layer2.1 (3)
    lam_of_layer = [0.05 + (1 - i / 3)**1.5 * 0.15 for i in range(4)]
    layer = {'conv1': 0, 'bn1': 0, 'layer1': 1, 'layer2.0': 2, 'layer2.1': 3}
    lams = {}
    for name, p in ref.named_parameters():
        key = next((k for k in sorted(layer, key=len, reverse=True)
                    if name.startswith('backbone.' + k)), None)
        lams[name] = 0.0 if key is None else lam_of_layer[layer[key]]
    theta0 = {n: p.detach().clone() for n, p in ref.named_parameters()}

    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(4, 3, 8, 8, generator=g)
        y = torch.randint(0, 3, (4, ), generator=g)
        ow.update_params(model(x, [*y], mode='loss')['loss'])
        ref_opt.zero_grad()
        ref(x, [*y], mode='loss')['loss'].backward()
        ref_opt.step()
        with torch.no_grad():
            for n, p in ref.named_parameters():
                if lams[n] > 0:
                    p.lerp_(theta0[n], lams[n])
    assert [g['rollback'] for g in ow.optimizer.param_groups][:2] == \
        pytest.approx([lam_of_layer[0]] * 2)
    for (n, p), q in zip(ref.named_parameters(), model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7, msg=n)


def test_non_pretrained_parameters_behave_as_the_plain_optimizer():
    torch.manual_seed(0)
    a = ToyClassifier()
    b = copy.deepcopy(a)
    opt = dict(type='SGD', lr=0.1)
    ow_a = _build(a, opt, rollback_max=0.5)
    ow_b = build_optim_wrapper(b, dict(type='OptimWrapper', optimizer=opt))
    x = torch.randn(4, 3, 8, 8)
    y = [*torch.tensor([0, 1, 2, 0])]
    ow_a.update_params(a(x, y, mode='loss')['loss'])
    ow_b.update_params(b(x, y, mode='loss')['loss'])
    # after one step the inputs of the head are the same, so the head's
    # update is the same; the backbone differs (it rolled back)
    assert torch.equal(a.head.weight, b.head.weight)
    assert torch.equal(a.head.bias, b.head.bias)
    assert not torch.equal(a.backbone.conv1.weight, b.backbone.conv1.weight)
    assert all(g['rollback'] == 0.0 and g['layer_id'] is None
               for g in ow_a.optimizer.param_groups[-2:])


def test_scale_with_lr_follows_linear_warmup_and_multistep():
    torch.manual_seed(0)
    model = Linear2().double()
    coeffs = [torch.randn_like(p) for p in model.parameters()]
    theta0 = [p.detach().clone() for p in model.parameters()]
    base_lr, iota1 = 0.1, 0.4
    ow = _build(model, dict(type='SGD', lr=base_lr), rollback_max=iota1)
    schedulers = [
        LinearLR(ow, start_factor=0.1, by_epoch=False, begin=0, end=4),
        MultiStepLR(ow, milestones=[6], gamma=0.1, by_epoch=False),
    ]
    # closed form of the lr: MMEngine's LinearLR reaches end_factor at
    # iteration end - 1 (0.1, 0.4, 0.7, 1.0), then MultiStepLR x0.1 from 6
    factors = [0.1 + 0.9 * min(t, 3) / 3 for t in range(9)]
    factors = [f * (0.1 if t >= 6 else 1.0) for t, f in enumerate(factors)]
    expect = [t.clone() for t in theta0]
    for t in range(9):
        assert ow.lr_ratios()[0] == pytest.approx(factors[t], rel=1e-12)
        ow.update_params(_fixed_grad_loss(model, coeffs))
        lr, lam = base_lr * factors[t], iota1 * factors[t]
        lams = [lam, lam, 0.0, 0.0, 0.0, 0.0]
        expect = [(1 - l) * (e - lr * c) + l * t0
                  for e, c, l, t0 in zip(expect, coeffs, lams, theta0)]
        for s in schedulers:
            s.step()
    for p, e in zip(model.parameters(), expect):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-13)


def test_lr0_is_the_lr_at_training_start_without_a_scheduler():
    """auto_scale_lr rescales lr after the build: lam is not rescaled."""
    model = Linear2().double()
    ow = _build(model, dict(type='SGD', lr=0.1), rollback_max=0.4)
    for g in ow.optimizer.param_groups:  # what Runner.scale_lr does
        g['lr'] *= 2
    ow.snapshot_theta0()  # what the first step does
    assert ow.lr_ratios() == [1.0] * len(ow.optimizer.param_groups)
    for g in ow.optimizer.param_groups:  # a later decay still scales lam
        g['lr'] *= 0.5
    assert ow.lr_ratios()[0] == 0.5
    assert ow.state_dict()['param_groups'][0]['initial_lr'] == 0.2


def test_scale_with_lr_off_keeps_lam_constant():
    model = Linear2().double()
    cfg = olor_wrapper_cfg(dict(type='SGD', lr=0.1), rollback_max=0.4)
    cfg['paramwise_cfg']['scale_with_lr'] = False
    ow = build_optim_wrapper(model, cfg)
    LinearLR(ow, start_factor=0.1, by_epoch=False, begin=0, end=4)
    assert ow.lr_ratios() == [1.0] * len(ow.optimizer.param_groups)


def test_tensors_without_gradient_are_left_untouched():
    model = Linear2()
    ow = _build(
        model, dict(type='SGD', lr=0.1), rollback_max=1.0, rollback_min=1.0)
    ow.snapshot_theta0()
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)  # moved outside the optimizer
    moved = [p.detach().clone() for p in model.backbone.parameters()]
    loss = model.backbone[1](torch.ones(1, 3)).sum()  # no grad to [0]
    ow.update_params(loss)
    assert torch.equal(model.backbone[0].weight, moved[0])
    assert torch.equal(model.backbone[0].bias, moved[1])
    assert torch.equal(model.backbone[1].weight, ow.theta0[2])


def test_gradient_accumulation_rolls_back_only_on_real_updates():
    model = Linear2().double()
    cfg = olor_wrapper_cfg(dict(type='SGD', lr=0.1), rollback_max=0.5)
    cfg['accumulative_counts'] = 2
    ow = build_optim_wrapper(model, cfg)
    ow.initialize_count_status(model, 0, 4)
    coeffs = [torch.ones_like(p) for p in model.parameters()]
    w0 = model.backbone[0].weight.detach().clone()
    ow.update_params(_fixed_grad_loss(model, coeffs))
    assert torch.equal(model.backbone[0].weight, w0)  # no step, no rollback
    ow.update_params(_fixed_grad_loss(model, coeffs))
    # accumulated grad 2 * 1/2 = 1: w = (1 - 0.5) (w0 - 0.1) + 0.5 w0
    torch.testing.assert_close(
        model.backbone[0].weight.detach(), w0 - 0.05, rtol=0, atol=1e-15)


def test_theta0_taken_at_first_update_outside_a_runner():
    model = Linear2()
    ow = _build(model, dict(type='SGD', lr=0.1))
    assert ow.theta0 is None
    with torch.no_grad():
        model.backbone[0].weight.fill_(3.0)  # "load" weights after building
    ow.update_params(model.backbone(torch.ones(1, 3)).sum())
    assert torch.equal(ow.theta0[0], torch.full((3, 3), 3.0))


def test_state_dict_round_trip_resumes_identically():
    """6 steps straight == 3 steps, state_dict, new model/wrapper, 3 steps."""
    opt = dict(type='AdamW', lr=1e-2, weight_decay=0.05)
    torch.manual_seed(0)
    straight = ToyClassifier()
    init = copy.deepcopy(straight.state_dict())
    ow = _build(straight, opt)
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, 3, 8, 8, generator=g),
             [*torch.randint(0, 3, (4, ), generator=g)]) for _ in range(6)]
    for x, y in data:
        ow.update_params(straight(x, y, mode='loss')['loss'])

    first = ToyClassifier()
    first.load_state_dict(init)
    ow1 = _build(first, opt)
    for x, y in data[:3]:
        ow1.update_params(first(x, y, mode='loss')['loss'])
    model_state = copy.deepcopy(first.state_dict())
    optim_state = copy.deepcopy(ow1.state_dict())
    assert len(saved_theta0(optim_state)) == len(ow1.theta0)

    second = ToyClassifier()
    second.load_state_dict(model_state)
    ow2 = _build(second, opt)
    ow2.load_state_dict(optim_state)
    # theta0 is the restored one, not the resumed (fine-tuned) weights
    for a, b in zip(ow2.theta0, ow.theta0):
        assert torch.equal(a, b)
    for x, y in data[3:]:
        ow2.update_params(second(x, y, mode='loss')['loss'])
    for (n, p), q in zip(straight.named_parameters(), second.parameters()):
        assert torch.equal(p, q), n


def test_load_state_dict_without_theta0_fails():
    model = ToyClassifier()
    plain = build_optim_wrapper(
        model, dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    ow = _build(model, dict(type='SGD', lr=0.1))
    with pytest.raises(KeyError, match='theta0.*load_from'):
        ow.load_state_dict(plain.state_dict())


def test_load_state_dict_with_wrong_theta0_shape_fails():
    a, b = ToyClassifier(width=4), ToyClassifier(width=4)
    ow_a = _build(a, dict(type='SGD', lr=0.1))
    ow_a.snapshot_theta0()
    state = ow_a.state_dict()
    state['param_groups'][0]['olor_rollback.theta0'][0] = torch.zeros(1, 2, 3)
    ow_b = _build(b, dict(type='SGD', lr=0.1))
    with pytest.raises(ValueError, match='shape'):
        ow_b.load_state_dict(state)


def test_warns_when_nothing_rolls_back(mm_log):
    build_optim_wrapper(
        Linear2(),
        dict(type='OLOROptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    assert any(r.levelname == 'WARNING'
               and 'nothing will roll back' in r.getMessage() for r in mm_log)


def test_multi_tensor_path_with_one_group_per_parameter(monkeypatch):
    """All rolled-back tensors go through one _foreach_lerp_ per bucket."""
    calls = []
    real = torch._foreach_lerp_

    def spy(params, anchors, weight):
        calls.append(len(params))
        return real(params, anchors, weight)

    model = ToyClassifier(blocks=(2, 2))
    ow = _build(model, dict(type='SGD', lr=0.1))
    n_groups = len(ow.optimizer.param_groups)
    monkeypatch.setattr(torch, '_foreach_lerp_', spy)
    _train(model, ow, steps=2)
    rolled = sum(1 for g in ow.optimizer.param_groups if g['rollback'] > 0)
    assert n_groups == len(list(model.parameters()))  # one group per param
    assert calls == [rolled, rolled]


def test_bfloat16_anchor():
    """theta0 kept in bfloat16: half the memory, theta0 rounded once."""
    torch.manual_seed(0)
    model = Linear2()
    cfg = olor_wrapper_cfg(
        dict(type='SGD', lr=0.1), rollback_max=1.0, rollback_min=1.0)
    cfg['paramwise_cfg']['anchor_dtype'] = 'bfloat16'
    ow = build_optim_wrapper(model, cfg)
    w0 = model.backbone[0].weight.detach().clone()
    ow.update_params(model.backbone(torch.ones(1, 3)).sum())
    assert ow.theta0[0].dtype == torch.bfloat16
    assert model.backbone[0].weight.dtype == torch.float32
    # lam = 1: back to theta0 as bfloat16 holds it
    torch.testing.assert_close(
        model.backbone[0].weight.detach(),
        w0.bfloat16().float(),
        rtol=0,
        atol=1e-6)
    state = ow.state_dict()
    assert saved_theta0(state)[0].dtype == torch.bfloat16
    ow2 = build_optim_wrapper(Linear2(), cfg)
    ow2.load_state_dict(state)
    assert torch.equal(ow2.theta0[0], ow.theta0[0])


def test_bad_anchor_dtype_fails_at_build():
    cfg = olor_wrapper_cfg(dict(type='SGD', lr=0.1))
    cfg['paramwise_cfg']['anchor_dtype'] = 'int8'
    with pytest.raises(ValueError, match='anchor_dtype'):
        build_optim_wrapper(Linear2(), cfg)


def test_deprecated_wrapper_keys_are_forwarded_to_the_rollback(mm_log):
    """scale_with_lr / anchor_dtype at the optim_wrapper level (the older
    spelling) configure the rollback as paramwise_cfg does, under the plain
    OptimWrapper and the alias, built with the constructor or without it;
    each use warns and names the documented key."""

    def text():
        return '\n'.join(r.getMessage() for r in mm_log)

    documented = olor_wrapper_cfg(dict(type='SGD', lr=0.1), rollback_max=0.4)
    documented['paramwise_cfg'].update(
        scale_with_lr=False, anchor_dtype='bfloat16')
    want = build_optim_wrapper(Linear2(), documented).rollback_handle
    for kind in ('OptimWrapper', 'OLOROptimWrapper'):
        cfg = olor_wrapper_cfg(dict(type='SGD', lr=0.1), rollback_max=0.4)
        cfg.update(type=kind, scale_with_lr=False, anchor_dtype='bfloat16')
        mm_log.clear()
        ow = build_optim_wrapper(Linear2(), cfg)
        handle = olor_mm.find_rollback(ow.optimizer)
        assert (handle.scale_with_lr, handle.anchor_dtype) == (
            want.scale_with_lr, want.anchor_dtype) == (False, torch.bfloat16)
        for key in ('scale_with_lr', 'anchor_dtype'):
            assert f'optim_wrapper.paramwise_cfg.{key}' in text()
        assert text().count('is deprecated') == 2
    # built without the constructor: the alias attaches with them
    model = Linear2()
    groups = [
        dict(params=list(model.backbone.parameters()), rollback=0.4),
        dict(params=list(model.head.parameters()), rollback=0.0)
    ]
    opt = torch.optim.SGD(groups, lr=0.1)
    mm_log.clear()
    ow = olor_mm.OLOROptimWrapper(opt, scale_with_lr=False)
    assert ow.scale_with_lr is False
    assert 'is deprecated' in text()


def test_B12_l2sp_with_an_olor_wrappers_scale_with_lr_builds():
    wrapper = build_optim_wrapper(
        ToyClassifier(),
        dict(
            type='L2SPOptimWrapper',
            scale_with_lr=False,
            optimizer=dict(type='SGD', lr=0.1),
            constructor='LayerwiseRollbackConstructor',
            paramwise_cfg=dict(layer_patterns=TOY_LAYERS)))
    # the former type: the current spelling, with L2-SP on the optimizer
    assert type(wrapper) is OptimWrapper
    assert isinstance(find_anchor(wrapper.optimizer), L2SPAnchor)
