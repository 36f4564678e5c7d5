"""The importance-weighted rollback (paramwise_cfg.importance='fisher',
olor_mm/core/importance.py): w per layer by hand, the update element by
element against its closed form, w estimated once and saved with theta0,
and the resumes that would change method refused."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from toy import (FISHER_DATA, TOY_LAYERS, ToyClassifier, fisher_by_hand,
                 param_copies, resumed_with_saved_fisher, toy_runner)

import olor_mm  # noqa: F401
from olor_mm import attach_rollback, layerwise_rollback_groups
from olor_mm.core.importance import (ImportanceRollbackHandle,
                                     attach_importance_rollback,
                                     normalize_importance)
from olor_mm.core.theta0 import find_anchor


def test_w_per_layer_by_hand():
    """Layer A holds [1, 3] and [0, 4] (mean 2, max 4), layer B [6]."""
    fisher = [
        torch.tensor([1., 3.]),
        torch.tensor([0., 4.]),
        torch.tensor([6.])
    ]
    layers = ['A', 'A', 'B']
    mean = normalize_importance(fisher, layers, 'mean')
    assert mean[0].tolist() == pytest.approx([1 / 3, 3 / 5])
    assert mean[1].tolist() == pytest.approx([0.0, 4 / 6])
    assert mean[2].tolist() == pytest.approx([0.5])  # its own mean
    top = normalize_importance(fisher, layers, 'max')
    assert top[0].tolist() == pytest.approx([0.25, 0.75])
    assert top[1].tolist() == pytest.approx([0.0, 1.0])
    assert top[2].tolist() == pytest.approx([1.0])
    # invariant to the scale of F
    scaled = normalize_importance([f * 1e6 for f in fisher], layers, 'mean')
    for a, b in zip(scaled, mean):
        torch.testing.assert_close(a, b)
    # a layer no loss reaches is not pulled back
    zero = normalize_importance([torch.zeros(3)], ['C'], 'mean')
    assert zero[0].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="importance_norm='median'"):
        normalize_importance(fisher, layers, 'median')
    with pytest.raises(ValueError, match='finite and >= 0'):
        normalize_importance([torch.tensor([-1.])], ['A'], 'mean')


class Two(nn.Module):
    """Two pretrained layers (stem = layer 0, block = layer 1) and a head."""

    def __init__(self, dtype=torch.float64):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        self.head = nn.Linear(2, 1)
        self.to(dtype)

    def forward(self, x):
        return self.head(self.backbone(x))


PATTERNS = [r'^(\d+)\.']  # backbone.0 -> layer 0, backbone.1 -> layer 1


def _sgd_setup(dtype=torch.float64, lr=0.1, rollback_max=0.6, **kwargs):
    model = Two(dtype)
    groups = layerwise_rollback_groups(
        model, ('backbone', ),
        rollback_max=rollback_max,
        layer_patterns=PATTERNS,
        **kwargs)
    opt = torch.optim.SGD(groups, lr=lr)
    return model, opt


def _fisher(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        n: torch.rand(p.shape, generator=g, dtype=torch.float64)**3
        for n, p in model.named_parameters() if n.startswith('backbone')
    }


def _step(model, opt, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 3, generator=g, dtype=next(model.parameters()).dtype)
    opt.zero_grad()
    model(x).pow(2).sum().backward()
    opt.step()


@pytest.mark.parametrize('norm', ['mean', 'max'])
def test_update_is_the_closed_form_per_element(norm):
    """theta_t[j] = theta_hat_t[j] + lam_i * w_j * (theta0[j] -
    theta_hat_t[j]), with theta_hat_t the plain SGD step of a twin model,
    lam_i of Eq. 8/9 (0.6 for the stem, 0 for the last pretrained layer)
    and w_j = F_j / (F_j + mean F) or F_j / max F of its layer, computed
    here from F by hand."""
    model, opt = _sgd_setup()
    twin, twin_opt = _sgd_setup()
    handle = attach_importance_rollback(opt, importance_norm=norm)
    names = dict(model.named_parameters())
    fisher = _fisher(model)
    handle.set_fisher({id(names[n]): f for n, f in fisher.items()})
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    # the pull is lam_i * lr_t / lr_0 with lr_t = lr_0: lam_i
    lam = {'backbone.0.weight': 0.6, 'backbone.0.bias': 0.6}
    for step in range(3):
        _step(model, opt, seed=step)
        _step(twin, twin_opt, seed=step)
        for n, p in twin.named_parameters():
            if n in lam:
                layer = [m for m in fisher if m.startswith(n[:10])]
                fs = torch.cat([fisher[m].flatten() for m in layer])
                if norm == 'mean':
                    w = fisher[n] / (fisher[n] + fs.mean())
                else:
                    w = fisher[n] / fs.max()
                with torch.no_grad():
                    p.add_(lam[n] * w * (theta0[n] - p))
        for n, p in model.named_parameters():
            torch.testing.assert_close(
                p, dict(twin.named_parameters())[n], rtol=0, atol=1e-12)
    # lam of the deepest pretrained layer is 0: it moved as SGD alone
    assert not torch.equal(names['backbone.1.weight'],
                           theta0['backbone.1.weight'])


def test_w_one_is_olor_and_w_zero_is_plain():
    """w = 1 everywhere gives OLOR's rollback bit for bit; w = 0 the plain
    optimizer's step."""
    results = {}
    for kind in ('olor', 'ones', 'zeros', 'plain'):
        model, opt = _sgd_setup()
        if kind == 'olor':
            attach_rollback(opt)
        elif kind != 'plain':
            handle = attach_importance_rollback(opt)
            fill = torch.ones_like if kind == 'ones' else torch.zeros_like
            handle.set_importance(
                {id(p): fill(p)
                 for p in handle.anchored_params})
        for step in range(3):
            _step(model, opt, seed=step)
        results[kind] = param_copies(model)
    for n in results['olor']:
        assert torch.equal(results['ones'][n], results['olor'][n]), n
        assert torch.equal(results['zeros'][n], results['plain'][n]), n


def test_low_precision_weights_carry_the_rounding_of_the_weighted_pull():
    """bfloat16 weights: 200 steps of a pull far below the weights'
    spacing add up as Eq. 6 does in float64 (no optimizer update: lr 0 on
    a gradient that keeps the tensor in the step)."""
    p = nn.Parameter(torch.full((4, ), 1.0, dtype=torch.bfloat16))
    opt = torch.optim.SGD([dict(params=[p], rollback=1.0, lr=0.0)], lr=0.0)
    handle = attach_importance_rollback(opt, from_current_weights=True)
    handle.snapshot()
    with torch.no_grad():
        p.fill_(2.0)  # 1.0 from theta0 = 1.0 (what a step would do)
    w = torch.tensor([1e-3, 2e-3, 0.0, 5e-4])
    handle.set_importance({id(p): w})
    opt.param_groups[0]['initial_lr'] = 0.0
    handle.scale_with_lr = False
    expected = torch.full((4, ), 2.0, dtype=torch.float64)
    for _ in range(200):
        p.grad = torch.ones_like(p)
        opt.step()
        expected += w.double() * (1.0 - expected)
    spacing = 2.0**-7  # of bfloat16 in [1, 2)
    assert (p.double() - expected).abs().max() <= spacing / 2 + 1e-12
    # plain rounding would have kept every weight at 2.0
    assert float(p[1]) < 2.0


def test_without_fisher_the_first_step_says_how_to_get_one():
    model, opt = _sgd_setup()
    attach_importance_rollback(opt)
    with pytest.raises(RuntimeError, match='set_fisher'):
        _step(model, opt)


def test_resumes_that_would_change_the_method_are_refused():
    """A plain rollback's state cannot resume the importance-weighted one
    (its w would be missing), and the other way round (w would be
    dropped); another importance_norm is refused; the same method
    restores w exactly."""
    model, opt = _sgd_setup()
    handle = attach_importance_rollback(opt, importance_norm='max')
    names = dict(model.named_parameters())
    handle.set_fisher({id(names[n]): f for n, f in _fisher(model).items()})
    _step(model, opt)
    state = opt.state_dict()

    _, plain_opt = _sgd_setup()
    attach_rollback(plain_opt)
    with pytest.raises(ValueError, match='importance-weighted rollback'):
        plain_opt.load_state_dict(state)

    _, other = _sgd_setup()
    attach_importance_rollback(other, importance_norm='mean')
    with pytest.raises(ValueError, match="importance_norm='max'"):
        other.load_state_dict(state)

    again_model, again = _sgd_setup()
    restored = attach_importance_rollback(again, importance_norm='max')
    again.load_state_dict(state)
    for p, q in zip(handle.anchored_params, restored.anchored_params):
        torch.testing.assert_close(restored.importance[id(q)],
                                   handle.importance[id(p)])

    plain_model = Two()
    plain_opt = torch.optim.SGD(
        layerwise_rollback_groups(
            plain_model, ('backbone', ),
            rollback_max=0.6,
            layer_patterns=PATTERNS),
        lr=0.1)
    attach_rollback(plain_opt)
    _step(plain_model, plain_opt)
    _, iw = _sgd_setup()
    attach_importance_rollback(iw)
    with pytest.raises(KeyError, match='no importance weights'):
        iw.load_state_dict(plain_opt.state_dict())


def _wrapper(**kwargs):
    paramwise = dict(
        rollback_max=0.5,
        importance='fisher',
        fisher_dataloader=FISHER_DATA,
        fisher_batches=3,
        layer_patterns=TOY_LAYERS)
    paramwise.update(kwargs)
    return dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.0),
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=paramwise)


def _w_by_hand(pretrained, layer_of):
    """w of the pretrained ToyClassifier: F on FISHER_DATA, then
    F / (F + mean F) within each layer."""
    total = fisher_by_hand(pretrained)
    out = {}
    for n, f in total.items():
        layer = [m for m in total if layer_of[m] == layer_of[n]]
        mean = sum(float(total[m].sum())
                   for m in layer) / sum(total[m].numel() for m in layer)
        out[n] = f / (f + mean)
    return out


@pytest.mark.exact_resume
def test_runner_estimates_w_once_saves_it_and_resume_restores(
        tmp_path, toy_pretrained, monkeypatch):
    path, pretrained = toy_pretrained
    straight = toy_runner(tmp_path / 'straight', _wrapper(), load_from=path)
    straight.train()
    handle = find_anchor(straight.optim_wrapper.optimizer)
    assert isinstance(handle, ImportanceRollbackHandle)
    groups = straight.optim_wrapper.optimizer.param_groups
    layer_of = {
        n: g['layer_id']
        for n, p in straight.model.named_parameters() for g in groups
        if any(q is p for q in g['params']) and g.get('layer_id') is not None
    }
    want = _w_by_hand(pretrained, layer_of)
    names = {id(p): n for n, p in straight.model.named_parameters()}
    # every layer but the deepest (lam 0: not anchored) has its w
    assert len(handle.importance) == len(handle.anchored_params) >= 4
    for p in handle.anchored_params:
        torch.testing.assert_close(
            handle.importance[id(p)], want[names[id(p)]], rtol=1e-5, atol=1e-7)

    second = resumed_with_saved_fisher(tmp_path / 'split', _wrapper, path,
                                       monkeypatch)
    a, b = param_copies(straight), param_copies(second)
    for n in a:
        assert torch.equal(a[n], b[n]), n


def test_build_refuses_fisher_keys_without_importance_and_bad_values():
    for extra, match in (
        (dict(importance=None), r"sets \['fisher_dataloader', "
         r"'fisher_batches'\] but importance=None"),
        (dict(importance='gradient'), "importance='gradient' is unknown"),
        (dict(importance_norm='median'),
         "paramwise_cfg.importance_norm='median' is unknown"),
        (dict(fisher_dataloader=None), "paramwise_cfg.importance='fisher' "
         'needs the upstream data'),
        (dict(fisher_normalize=True), 'fisher_normalize is a key of '
         r"method=\['ewc'\]"),
    ):
        with pytest.raises(ValueError, match=match):
            build_optim_wrapper(ToyClassifier(), _wrapper(**extra))


def test_a_layer_no_upstream_loss_reaches_is_named(caplog):
    """F = 0 on every weight of the stem: w = 0 there and one warning names
    its layer; a zero F on one tensor of a layer with others is no such
    layer."""
    model, opt = _sgd_setup(rollback_min=0.1)  # both layers roll back
    handle = attach_importance_rollback(opt)
    names = dict(model.named_parameters())
    fisher = _fisher(model)
    fisher['backbone.0.weight'].zero_()
    fisher['backbone.0.bias'].zero_()
    fisher['backbone.1.bias'].zero_()
    with caplog.at_level('WARNING', logger='olor_mm.core.importance'):
        handle.set_fisher({id(names[n]): f for n, f in fisher.items()})
    (record, ) = [r for r in caplog.records if 'zero on every' in r.message]
    assert 'layer(s) 0:' in record.getMessage()
    assert not bool(handle.importance[id(names['backbone.0.weight'])].any())
    assert bool(handle.importance[id(names['backbone.1.weight'])].any())
