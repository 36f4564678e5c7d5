"""AmpOLOROptimWrapper on the CPU: bfloat16 autocast with a real GradScaler."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

import olor_mm  # noqa: F401
from olor_mm import AmpOLOROptimWrapper


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.backbone(x))


def _amp(model, **kwargs):
    return build_optim_wrapper(
        model,
        dict(
            type='AmpOLOROptimWrapper',
            optimizer=dict(type='SGD', lr=0.1),
            constructor='LayerwiseRollbackConstructor',
            paramwise_cfg=dict(rollback_max=0.5),
            **kwargs))


def test_cpu_amp_runs_in_bfloat16():
    model = Net()
    ow = _amp(model)
    assert isinstance(ow, AmpOLOROptimWrapper)
    with ow.optim_context(model):
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16


def test_skipped_step_skips_the_rollback():
    torch.manual_seed(0)
    model = Net()
    ow = _amp(model)
    x = torch.randn(8, 4)
    for _ in range(2):  # real steps: weights leave theta0
        with ow.optim_context(model):
            loss = model(x).float().pow(2).mean()
        ow.update_params(loss)
    theta0 = [t.clone() for t in ow.theta0]
    before = [p.detach().clone() for p in model.parameters()]
    assert not torch.equal(before[0], theta0[0])
    scale = ow.loss_scaler.get_scale()

    with ow.optim_context(model):
        loss = model(x).float().mean() * float('inf')  # inf gradients
    ow.update_params(loss)
    assert ow.loss_scaler.get_scale() == scale * 0.5  # the scaler skipped
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)  # no update, no rollback
    for t, t0 in zip(ow.theta0, theta0):
        assert torch.equal(t, t0)

    with ow.optim_context(model):
        loss = model(x).float().pow(2).mean()
    ow.update_params(loss)  # a good step rolls back again
    assert not torch.equal(model.backbone[0].weight, before[0])


def test_amp_rollback_equals_optimizer_then_lerp():
    """Static scale 1024: SGD on the unscaled gradient, then lerp to theta0."""
    torch.manual_seed(0)
    model = Net()
    ref = copy.deepcopy(model)
    x = torch.randn(8, 4)
    w0 = model.backbone[0].weight.detach().clone()
    ow = _amp(model, loss_scale=1024.)
    with ow.optim_context(model):
        loss = model(x).float().pow(2).mean()
    ow.update_params(loss)

    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ref_loss = ref(x).float().pow(2).mean()
    (ref_loss * 1024.).backward()
    for p in ref.parameters():
        p.grad /= 1024.
    ref_opt.step()
    # backbone[0] is layer 0 of 2: lam = rollback_max = 0.5
    assert ow.optimizer.param_groups[0]['rollback'] == 0.5
    expected = torch.lerp(ref.backbone[0].weight.detach(), w0, 0.5)
    torch.testing.assert_close(model.backbone[0].weight.detach(), expected)
    # backbone[1] is layer n (lam = 0) and the head is new: plain SGD
    torch.testing.assert_close(model.head.weight, ref.head.weight)


def test_cpu_amp_refuses_float16():
    with pytest.raises(ValueError, match='bfloat16'):
        _amp(Net(), dtype='float16')


def test_upstream_amp_wrapper_on_a_cpu_is_refused_before_the_table(
        monkeypatch):
    """What upstream tools/train.py --amp writes: MMEngine's AmpOptimWrapper
    needs a GPU; the constructor says so, with the CPU wrapper to use, when
    it is built (before it sees the model, so before the layer table)."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
    for kind in ('cuda', 'npu', 'mlu', 'musa'):  # what MMEngine asks
        if hasattr(amp, f'is_{kind}_available'):
            monkeypatch.setattr(amp, f'is_{kind}_available', lambda: False)
    from olor_mm.engine.constructors import LayerwiseRollbackConstructor
    with pytest.raises(
            RuntimeError, match="needs a GPU.*'AmpOLOROptimWrapper'"):
        LayerwiseRollbackConstructor(
            dict(type='AmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
            dict(rollback_max=0.5))
