"""The fourth probe's cases that were not good (issue 34; the probe's
scripts and its table: docs/reliability.md). Each failed on the main of
2026-12-07 and holds now."""
import copy

import pytest
import torch
import torch.nn as nn

import olor_mm  # noqa: F401
from olor_mm import attach_rollback, layerwise_rollback_groups


class _Net(nn.Module):

    def __init__(self, gain=1.0):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6))
        self.backbone.gain = nn.Parameter(torch.full((2, ), gain))
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x)) * self.backbone.gain.sum()


def _setup(model, **kwargs):
    groups = layerwise_rollback_groups(
        model, ('backbone', ), rollback_max=0.3, layer_unit='param')
    opt = torch.optim.SGD(groups, lr=0.1)
    return opt, attach_rollback(opt, setup=groups.setup, **kwargs)


def _step(model, opt):
    opt.zero_grad()
    model(torch.randn(3, 4)).sum().backward()
    opt.step()


def test_P4_F11_a_theta0_that_overflows_anchor_dtype_is_refused():
    """A finite float32 weight of 1e5 with anchor_dtype='float16' (largest
    65504): theta0 was inf, the rollback pulled the weight there and the
    next step made every weight NaN, without a word."""
    torch.manual_seed(0)
    model = _Net(gain=1e5)
    opt, _ = _setup(model, anchor_dtype='float16')
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError) as err:
        _step(model, opt)
    text = str(err.value)
    assert 'anchor_dtype=torch.float16' in text and '1e+05' in text
    assert "'bfloat16'" in text
    for n, p in model.named_parameters():  # refused before any update
        assert torch.equal(p, before[n]), n
    # a float32 theta0 resumed with anchor_dtype='float16': refused on load
    model = _Net(gain=1e5)
    opt, _ = _setup(model)
    _step(model, opt)
    again, _ = _setup(_Net(gain=1e5), anchor_dtype='float16')
    with pytest.raises(ValueError, match='do not fit anchor_dtype'):
        again.load_state_dict(opt.state_dict())


def test_P4_D12_a_copied_optimizer_refuses_to_save_without_theta0():
    """``copy.deepcopy(optimizer).state_dict()`` held no theta0 (the copy
    has no hooks), without a word. Now the copy refuses to save as it
    refuses to step, naming the way to keep a copy; a state written after
    ``remove()`` names why it has no theta0 when loaded."""
    torch.manual_seed(0)
    model = _Net()
    opt, handle = _setup(model)
    _step(model, opt)
    best = copy.deepcopy(opt)
    with pytest.raises(RuntimeError) as err:
        best.state_dict()
    assert 'copy.deepcopy(optimizer.state_dict())' in str(err.value)
    # attached and loaded, the copy is a twin that saves theta0
    attach_rollback(best)
    best.load_state_dict(opt.state_dict())
    assert any('olor_rollback.theta0' in g
               for g in best.state_dict()['param_groups'])
    # the state dict of the optimizer itself resumes
    fresh, _ = _setup(_Net())
    fresh.load_state_dict(copy.deepcopy(opt.state_dict()))
    # removed, then saved: no theta0, and the load says why
    handle.remove()
    saved = opt.state_dict()
    again, _ = _setup(_Net())
    with pytest.raises(KeyError) as err:
        again.load_state_dict(saved)
    assert 'handle.remove()' in str(err.value)


def test_P4_E12_a_group_of_another_size_is_named():
    """One more tensor frozen on resume: "4 param groups, this optimizer
    4" named nothing. Now: the group, both sizes, and freezing."""
    torch.manual_seed(0)
    model = _Net()
    opt, _ = _setup(model)
    _step(model, opt)
    state = opt.state_dict()
    again = _Net()
    again.head.bias.requires_grad_(False)  # the new head's group: 1 tensor
    fresh, _ = _setup(again)
    with pytest.raises(ValueError) as err:
        fresh.load_state_dict(state)
    text = str(err.value)
    assert 'param group' in text and 'holds' in text
    assert 'frozen (requires_grad)' in text


@pytest.mark.parametrize('how', ['data', 'set_'])
def test_P4_A7_A8_a_weight_whose_shape_changed_is_named_before_the_step(how):
    """A rolled-back bias widened after theta0 (``p.data = ...``, or
    ``set_``): torch's raw broadcast error came from the rollback, after
    the optimizer's update. Now it is named before the update."""
    torch.manual_seed(0)
    model = _Net()
    opt, handle = _setup(model)
    handle.param_names = {id(p): n for n, p in model.named_parameters()}
    _step(model, opt)
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
