"""Drop-in parity: with nothing anchored, olor-mm's wrappers are MMEngine's.

Written after MMEngine's own ``tests/test_optim/test_optimizer/
test_optimizer_wrapper.py`` (state dicts, param groups, mocks of the
optimizer, accumulation contexts), with each check run on the MMEngine
wrapper and on olor-mm's in its place; the results must agree.
"""
from unittest.mock import MagicMock

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch.optim import SGD, Adam, Optimizer

from olor_mm import AmpOLOROptimWrapper, OLOROptimWrapper


class ToyModel(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 1)
        self.conv2 = nn.Conv2d(1, 1, 1)
        self.conv3 = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.conv2(self.conv1(x))


WRAPPERS = [OptimWrapper, OLOROptimWrapper]


@pytest.fixture(params=WRAPPERS, ids=lambda c: c.__name__)
def cls(request):
    return request.param


def _mock_method(optim_wrapper):

    def mock_method(loss):
        optim_wrapper._inner_count += 1
        optim_wrapper.scaled_loss = loss

    optim_wrapper.backward = mock_method
    optim_wrapper.step = MagicMock()
    optim_wrapper.zero_grad = MagicMock()


def test_init(cls):
    model = ToyModel()
    optimizer = SGD(model.parameters(), lr=0.1)
    message_hub = MessageHub.get_instance('test_parity_init')
    ow = cls(optimizer)
    assert ow.optimizer is optimizer
    assert ow.clip_grad_kwargs is None
    assert ow._accumulative_counts == 1
    assert ow.message_hub is message_hub
    assert (ow._inner_count, ow._max_counts, ow._remainder_counts) == \
        (0, -1, -1)
    with pytest.raises(AssertionError, match='If `clip_grad` is not None'):
        cls(optimizer, clip_grad=[])


def test_update_params_and_accumulation(cls):
    model = ToyModel()
    ow = cls(SGD(model.parameters(), lr=0.1), accumulative_counts=1)
    _mock_method(ow)
    ow.update_params(torch.tensor(1.))
    assert ow.scaled_loss == torch.tensor(1.)
    ow.step.assert_called_with()
    ow.zero_grad.assert_called_with()

    ow = cls(SGD(model.parameters(), lr=0.1), accumulative_counts=3)
    _mock_method(ow)
    ow.update_params(torch.tensor(1.))  # accumulate, no update
    assert ow.scaled_loss == torch.tensor(1.) / 3.
    ow.step.assert_not_called()
    ow.update_params(torch.tensor(1.))
    ow.update_params(torch.tensor(1.))  # third: update
    ow.step.assert_called()
    ow.zero_grad.assert_called()
    _mock_method(ow)
    ow.initialize_count_status(model, 99, 100)  # the last one updates
    ow.update_params(torch.tensor(1.))
    ow.step.assert_called()
    assert ow.scaled_loss == torch.tensor(1.)
    _mock_method(ow)
    ow.initialize_count_status(model, 96, 100)
    for _ in range(2):
        ow.update_params(torch.tensor(1.))
        ow.step.assert_not_called()
    assert ow.scaled_loss == torch.tensor(1.) / 3


def test_initialize_count_status(cls):
    model = ToyModel()
    ow = cls(SGD(model.parameters(), lr=0.1), accumulative_counts=3)
    ow.initialize_count_status(model, 0, 100)
    assert ow._remainder_counts == 1


def test_get_lr_and_momentum(cls):
    model = ToyModel()
    assert cls(SGD(model.parameters(), lr=0.1)).get_lr() == dict(lr=[0.1])
    constructor = DefaultOptimWrapperConstructor(
        dict(type=cls.__name__, optimizer=dict(type='SGD', lr=0.1)),
        dict(custom_keys={'conv1.weight': dict(lr_mult=0.1)}))
    assert constructor(model).get_lr() == dict(
        base_lr=[0.1], lr=[0.1 * 0.1] + [0.1] * 5)
    ow = cls(SGD(model.parameters(), lr=0., momentum=0.8))
    assert ow.get_momentum() == dict(momentum=[0.8])
    ow = cls(Adam(model.parameters(), lr=0., betas=(0.9, 0.9)))
    assert ow.get_momentum() == dict(momentum=[0.9])


def test_zero_grad_and_step_reach_a_mocked_optimizer(cls):
    """A group without 'lr' (or anything else) is no requirement."""
    optimizer = MagicMock(spec=Optimizer)
    optimizer.defaults = {}
    optimizer.param_groups = [{}]
    ow = cls(optimizer)
    ow.zero_grad()
    optimizer.zero_grad.assert_called()
    ow.step()
    optimizer.step.assert_called()
    assert ow.param_groups == [{}]


def test_backward(cls):
    loss = MagicMock()
    cls(SGD(ToyModel().parameters(), lr=0.1)).backward(loss)
    loss.backward.assert_called()


def test_state_dict_is_the_optimizers(cls):
    model = ToyModel()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    ow = cls(optimizer)
    ow.update_params(model(torch.ones(1, 1, 2, 2)).sum())
    assert ow.state_dict() == optimizer.state_dict()
    assert ow.state_dict().keys() == {'state', 'param_groups'}


def test_load_state_dict_of_a_plain_optimizer(cls):
    ow = cls(SGD(ToyModel().parameters(), lr=0.1))
    model = ToyModel()
    optimizer = SGD(model.parameters(), lr=0.2, momentum=0.5)
    model(torch.ones(1, 1, 2, 2)).sum().backward()
    optimizer.step()
    ow.load_state_dict(optimizer.state_dict())
    assert ow.state_dict() == optimizer.state_dict()


def test_param_groups(cls):
    optimizer = SGD(ToyModel().parameters(), lr=0.1)
    assert cls(optimizer).param_groups is optimizer.param_groups


def test_optim_context_blocks_sync_while_accumulating(cls):
    model = ToyModel()
    ddp = MagicMock()  # what DistributedDataParallel offers: no_sync()
    ow = cls(SGD(model.parameters(), lr=0.01), accumulative_counts=3)
    ow.initialize_count_status(model, 0, 100)
    with ow.optim_context(ddp):
        pass
    ddp.no_sync.assert_called_once()
    ow.initialize_count_status(model, 2, 100)  # the update iteration
    ddp.no_sync.reset_mock()
    with ow.optim_context(ddp):
        pass
    ddp.no_sync.assert_not_called()


def test_clip_grad_logs_the_norm(cls):
    model = ToyModel()
    hub = MessageHub.get_instance('test_parity_clip')
    ow = cls(SGD(model.parameters(), lr=0.1), clip_grad=dict(max_norm=35))
    model(torch.ones(1, 1, 1, 1)).sum().backward()
    ow._clip_grad()
    assert 'train/grad_norm' in hub.log_scalars


def test_same_training_same_everything():
    """Both wrappers, same steps: identical weights and state dicts."""
    states, weights = [], []
    for cls in WRAPPERS:
        torch.manual_seed(0)
        model = ToyModel()
        ow = cls(
            Adam(model.parameters(), lr=0.1),
            accumulative_counts=2,
            clip_grad=dict(max_norm=1.0))
        ow.initialize_count_status(model, 0, 4)
        for i in range(4):
            ow.update_params(model(torch.full((1, 1, 2, 2), i + 1.)).sum())
        states.append(ow.state_dict())
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))
    torch.testing.assert_close(states[0], states[1], rtol=0, atol=0)


def test_amp_twin_state_dict_is_the_optimizers_plus_the_scaler():
    """AmpOLOROptimWrapper (CPU, bfloat16) saves what AmpOptimWrapper does.

    MMEngine's AmpOptimWrapper needs CUDA, so its format is spelled out:
    the optimizer's state dict plus ``'loss_scaler'``.
    """
    model = ToyModel()
    optimizer = SGD(model.parameters(), lr=0.1)
    ow = AmpOLOROptimWrapper(optimizer, loss_scale=16.)
    with ow.optim_context(model):
        loss = model(torch.ones(1, 1, 2, 2)).float().sum()
    ow.update_params(loss)
    state = ow.state_dict()
    assert state.keys() == {'state', 'param_groups', 'loss_scaler'}
    assert state['loss_scaler'] == ow.loss_scaler.state_dict()
    other = AmpOLOROptimWrapper(SGD(ToyModel().parameters(), lr=0.3))
    other.load_state_dict(state)  # the parent's format loads
    assert other.param_groups[0]['lr'] == 0.1
    assert other.loss_scaler.get_scale() == ow.loss_scaler.get_scale()
