"""EWC (paramwise_cfg.method='ewc'): the Fisher by hand, the penalty's
gradient by autograd, F estimated at the first step, saved with theta0 and
restored (not re-estimated) on resume."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from toy import (FISHER_DATA, TOY_LAYERS, ToyClassifier, ToyDataset,
                 fisher_by_hand, param_copies, penalty_wrapper_cfg,
                 resumed_runner, resumed_with_saved_fisher, toy_runner)

import olor_mm  # noqa: F401
from olor_mm.core.fisher import (diagonal_fisher, fisher_by_name,
                                 normalize_fisher)
from olor_mm.core.importance import attach_importance_rollback
from olor_mm.core.penalty import EWCAnchor
from olor_mm.core.theta0 import find_anchor
from olor_mm.engine import fisher_data


def test_fisher_is_the_mean_squared_batch_gradient_by_hand():
    """y = w x + b with the loss (w x + b - t)^2 summed over a batch:
    dL/dw = sum 2 r x, dL/db = sum 2 r (r = w x + b - t), written out."""
    w = torch.tensor(0.5, requires_grad=True)
    b = torch.tensor(-0.25, requires_grad=True)
    batches = [((1.0, 2.0), (1.0, 0.0)), ((-1.0, 3.0), (2.0, 1.0)),
               ((0.5, ), (0.0, ))]
    expected_w = expected_b = 0.0
    for xs, ts in batches:
        rs = [0.5 * x - 0.25 - t for x, t in zip(xs, ts)]
        gw = sum(2 * r * x for r, x in zip(rs, xs))
        gb = sum(2 * r for r in rs)
        expected_w += gw * gw / 3
        expected_b += gb * gb / 3

    def losses():
        for xs, ts in batches:
            x, t = torch.tensor(xs), torch.tensor(ts)
            yield ((w * x + b - t)**2).sum()

    fw, fb = diagonal_fisher([w, b], losses())
    assert float(fw) == pytest.approx(expected_w, rel=1e-6)
    assert float(fb) == pytest.approx(expected_b, rel=1e-6)
    # normalised: divided by the mean of all entries
    f = [fw.clone(), fb.clone()]
    mean = normalize_fisher(f)
    assert mean == pytest.approx((expected_w + expected_b) / 2, rel=1e-6)
    assert float(f[0]) == pytest.approx(expected_w / mean, rel=1e-6)


def test_fisher_of_a_frozen_tensor_is_zero_and_bad_losses_are_named():
    w = torch.tensor(1.0, requires_grad=True)
    frozen = torch.tensor(2.0)
    fw, ff = diagonal_fisher([w, frozen], iter([(w * frozen)**2]))
    assert float(fw) == pytest.approx((2 * 1.0 * 4.0)**2)
    assert float(ff) == 0.0
    with pytest.raises(ValueError, match='Fisher batch 0 is nan'):
        diagonal_fisher([w], iter([w * float('nan')]))
    with pytest.raises(ValueError, match='no Fisher batch'):
        diagonal_fisher([w], iter([]))
    with pytest.raises(ValueError, match='zero on every anchored'):
        normalize_fisher([torch.zeros(3)])


class Tiny(nn.Module):

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Linear(3, 2)
        self.head = nn.Linear(2, 1)


def ewc_cfg(optimizer, alpha=0.7, beta=0.3, **kwargs):
    kwargs.setdefault('fisher_dataloader', FISHER_DATA)
    return penalty_wrapper_cfg('ewc', optimizer, alpha, beta, **kwargs)


def _moved_with_fisher(**extra):
    model = Tiny().double()
    ow = build_optim_wrapper(model, ewc_cfg(dict(type='SGD', lr=0.1), **extra))
    anchor = find_anchor(ow.optimizer)
    anchor.snapshot()
    theta0 = [t.clone() for t in anchor.theta0]
    g = torch.Generator().manual_seed(1)
    fisher = [torch.rand(p.shape, generator=g).double() for p in theta0]
    anchor.set_fisher(
        {id(p): f
         for p, f in zip(anchor.anchored_params, fisher)})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g).double())
    return model, anchor, theta0, fisher


def test_penalty_gradient_and_value_equal_autograd_of_the_ewc_loss():
    model, anchor, theta0, fisher = _moved_with_fisher()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    anchor.add_penalty_grad()
    got = [p.grad.clone() for p in model.parameters()]

    ws = list(model.backbone.parameters())
    omega = 0.7 / 2 * sum(
        (f * (w - t)**2).sum() for w, t, f in zip(ws, theta0, fisher))
    omega = omega + 0.3 / 2 * sum(
        (v**2).sum() for v in model.head.parameters())
    expected = torch.autograd.grad(omega, list(model.parameters()))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert anchor.penalty() == pytest.approx(float(omega.detach()), rel=1e-12)
    # F = 1 everywhere is L2-SP
    anchor.set_fisher({id(p): torch.ones_like(p) for p in ws})
    l2 = 0.7 / 2 * sum(((w - t)**2).sum() for w, t in zip(ws, theta0))
    l2 = l2 + 0.3 / 2 * sum((v**2).sum() for v in model.head.parameters())
    assert anchor.penalty() == pytest.approx(float(l2.detach()), rel=1e-12)


def test_gradients_that_still_carry_a_loss_scale_get_it_on_the_penalty():
    """A fused optimizer under GradScaler sees scaled gradients (the scaler
    sets ``grad_scale`` on it): the penalty is added times that scale."""
    model, anchor, theta0, fisher = _moved_with_fisher()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    anchor.add_penalty_grad(scale=256.)
    ws = list(model.backbone.parameters())
    for w, t, f in zip(ws, theta0, fisher):
        torch.testing.assert_close(
            w.grad, 256. * 0.7 * f * (w.detach() - t), rtol=1e-12, atol=0)


def test_a_plain_torch_step_without_fisher_says_how_to_get_one():
    model = Tiny()
    groups = olor_mm.layerwise_rollback_groups(model, rollback_max=0.1)
    opt = torch.optim.SGD(groups, lr=0.1)
    EWCAnchor(opt)
    model.backbone.weight.sum().backward()
    with pytest.raises(RuntimeError, match='set_fisher'):
        opt.step()


@pytest.mark.parametrize('method', ['ewc', 'importance'])
def test_a_tensor_that_joins_after_f_moves_as_the_plain_step(method, caplog):
    """A group added after F was estimated (add_param_group) gets F = 0
    (EWC) or w = 0 (the importance-weighted rollback): no pull toward its
    theta0; it moves as plain SGD moves a twin; one warning says so."""
    model = Tiny()
    groups = olor_mm.layerwise_rollback_groups(model, rollback_max=0.1)
    opt = torch.optim.SGD(groups, lr=0.1)

    def ones(handle):  # F = 1 on every tensor anchored at the first step
        return {id(p): torch.ones_like(p) for p in handle.anchored_params}, 1.

    handle = (
        EWCAnchor(opt, ones, alpha=1.0, beta=0.0) if method == 'ewc' else
        attach_importance_rollback(opt, fisher_source=ones))
    model.backbone.weight.sum().backward()
    opt.step()
    extra = nn.Parameter(torch.ones(3))
    twin = nn.Parameter(torch.ones(3))
    opt.add_param_group(dict(params=[extra], rollback=0.5, layer_id=1))
    plain = torch.optim.SGD([twin], lr=0.1)
    with caplog.at_level('WARNING', logger='olor_mm.core.fisher'):
        for _ in range(2):  # the 2nd: extra is off its theta0, F would pull
            for o, p in ((opt, extra), (plain, twin)):
                o.zero_grad()
                (p * torch.arange(3.)).sum().backward()
                o.step()
    assert torch.equal(extra, twin) and not torch.equal(twin, torch.ones(3))
    table = handle.fisher if method == 'ewc' else handle.importance
    assert torch.equal(table[id(extra)], torch.zeros(3))
    symbol = 'F' if method == 'ewc' else 'w'
    (record, ) = [r for r in caplog.records if 'joined' in r.message]
    assert f'1 tensors joined after the Fisher information was estimated: ' \
        f'{symbol} = 0' in record.getMessage()


@pytest.mark.parametrize('key,value', [('fisher_batches', 0),
                                       ('fisher_batches', 2.5),
                                       ('alpha', -1.0),
                                       ('fisher_dataloader', None)])
def test_bad_keys_fail_at_build(key, value):
    with pytest.raises(ValueError, match=f'paramwise_cfg.{key}'):
        build_optim_wrapper(Tiny(),
                            ewc_cfg(dict(type='SGD', lr=0.1), **{key: value}))


def _wrapper(**kwargs):
    paramwise = dict(
        method='ewc',
        alpha=1.0,
        fisher_dataloader=FISHER_DATA,
        fisher_batches=3,
        rollback_max=0.1,  # the OLOR block's key: unused by EWC
        layer_patterns=TOY_LAYERS)
    paramwise.update(kwargs)
    return dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.0),
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=paramwise)


def _fisher(runner):
    anchor = find_anchor(runner.optim_wrapper.optimizer)
    return [anchor.fisher[id(p)] for p in anchor.anchored_params]


def _fisher_by_hand(pretrained):
    """F of the pretrained ToyClassifier on FISHER_DATA, divided by its
    mean over every entry."""
    total = fisher_by_hand(pretrained)
    mean = sum(float(t.sum())
               for t in total.values()) / sum(t.numel()
                                              for t in total.values())
    return [t / mean for t in total.values()]


@pytest.mark.exact_resume
def test_runner_estimates_f_at_the_first_step_saves_it_and_resume_restores(
        tmp_path, toy_pretrained, monkeypatch):
    path, pretrained = toy_pretrained
    straight = toy_runner(tmp_path / 'straight', _wrapper(), load_from=path)
    straight.train()
    expected = _fisher_by_hand(pretrained)
    assert len(_fisher(straight)) == len(expected)
    for got, want in zip(_fisher(straight), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)

    # alpha=0: the Fisher's passes leave the run as L2-SP's at alpha=0
    # (the same penalty code without F): the buffers and random streams are
    # untouched, the weights bit-identical
    zero = toy_runner(
        tmp_path / 'zero', _wrapper(alpha=0.0, beta=0.0), load_from=path)
    zero.train()
    plain = _wrapper(alpha=0.0, beta=0.0, method='l2sp')
    for key in list(plain['paramwise_cfg']):
        if key.startswith('fisher'):
            del plain['paramwise_cfg'][key]
    plain = toy_runner(tmp_path / 'plain', plain, load_from=path)
    plain.train()
    a, b = param_copies(zero), param_copies(plain)
    for n in a:
        assert torch.equal(a[n], b[n]), n
    assert torch.equal(zero.model.backbone.bn1.running_mean,
                       plain.model.backbone.bn1.running_mean)

    # a resume restores F from the checkpoint: estimating it is an error
    second = resumed_with_saved_fisher(tmp_path / 'split', _wrapper, path,
                                       monkeypatch)
    for got, want in zip(_fisher(second), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    a, b = param_copies(straight), param_copies(second)
    for n in a:
        assert torch.equal(a[n], b[n]), n


def test_resume_from_an_l2sp_checkpoint_is_refused(tmp_path, toy_pretrained):
    path, _ = toy_pretrained
    l2sp = _wrapper(method='l2sp')
    for key in list(l2sp['paramwise_cfg']):
        if key.startswith('fisher'):
            del l2sp['paramwise_cfg'][key]
    toy_runner(tmp_path / 'run', l2sp, max_iters=3, load_from=path).train()
    state = torch.load(tmp_path / 'run' / 'iter_3.pth', weights_only=False)
    osd = state['optimizer']
    osd['ewc_anchor'] = dict(osd.pop('l2sp_anchor'))  # no 'fisher' in it
    for g in osd['param_groups']:
        if 'l2sp_anchor.theta0' in g:
            g['ewc_anchor.theta0'] = g.pop('l2sp_anchor.theta0')
    torch.save(state, tmp_path / 'run' / 'iter_3.pth')
    with pytest.raises(KeyError, match='no Fisher information'):
        resumed_runner(tmp_path / 'run', _wrapper(),
                       tmp_path / 'run' / 'iter_3.pth').train()


def test_fisher_model_mapped_by_name_and_shape(tmp_path, toy_pretrained):
    """F from the upstream model (``fisher_model``: its own head, unlike
    the fine-tuned model's new one) on the fine-tuned model's pretrained
    tensors, matched by name; an upstream model of other shapes is refused
    by name."""
    path, pretrained = toy_pretrained
    upstream = ToyClassifier()
    upstream.load_state_dict(pretrained)
    torch.manual_seed(7)
    upstream.head.reset_parameters()
    up_path = str(tmp_path / 'upstream.pth')
    torch.save(dict(state_dict=upstream.state_dict()), up_path)
    data = ToyDataset(seed=5)
    batch = dict(inputs=list(data.x[:4]), labels=list(data.y[:4]))
    want = fisher_by_name(upstream, [batch], 1,
                          lambda n, p: n.startswith('backbone'))
    normalize_fisher(list(want.values()))

    model = ToyClassifier()
    model.load_state_dict(pretrained)
    cfg = _wrapper(
        fisher_batches=1,
        fisher_model=dict(type='ToyClassifier'),
        fisher_checkpoint=up_path)
    ow = build_optim_wrapper(model, cfg)
    anchor = find_anchor(ow.optimizer)
    anchor.snapshot()
    source = fisher_data.fisher_source(
        model, dict(fisher_data.FISHER_DEFAULTS, **cfg['paramwise_cfg']))
    fisher, _ = source(anchor)
    names = [n for n, _ in model.named_parameters() if n.startswith('backb')]
    params = dict(model.named_parameters())
    for n in names:
        torch.testing.assert_close(
            fisher[id(params[n])], want[n], rtol=1e-5, atol=1e-8)
    # the fine-tuned model's own head gives another F: the head was used
    own = fisher_by_name(model, [batch], 1,
                         lambda n, p: n.startswith('backbone'))
    normalize_fisher(list(own.values()))
    assert not torch.allclose(own[names[-1]], want[names[-1]])

    with pytest.raises(ValueError, match='fisher_checkpoint'):
        build_optim_wrapper(model,
                            _wrapper(fisher_model=dict(type="ToyClassifier")))
    wide_path = str(tmp_path / 'wide.pth')
    torch.save(dict(state_dict=ToyClassifier(width=8).state_dict()), wide_path)
    wide = _wrapper(
        fisher_model=dict(type='ToyClassifier', width=8),
        fisher_checkpoint=wide_path)
    ow = build_optim_wrapper(model, wide)
    anchor = find_anchor(ow.optimizer)
    anchor.snapshot()
    with pytest.raises(ValueError, match='same name and shape'):
        fisher_data.fisher_source(
            model, dict(fisher_data.FISHER_DEFAULTS, **wide['paramwise_cfg']))(
                anchor)
