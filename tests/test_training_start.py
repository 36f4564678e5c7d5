"""One rule for when theta0 is taken (olor_mm.engine.training_start): the
Runner's ``initialize_count_status`` takes it from the weights then, under
every wrapper olor-mm builds or makes; resuming at an iteration > 0 without
a restored theta0 is refused; a deep copy takes its own."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from toy import ToyClassifier, olor_wrapper_cfg, penalty_wrapper_cfg

import olor_mm
from olor_mm.core.theta0 import find_anchor

SGD = dict(type='SGD', lr=0.1)


def _cfg(kind):
    if kind == 'L2SPOptimWrapper':
        return penalty_wrapper_cfg(kind, SGD, alpha=0.1, beta=0.01)
    return dict(olor_wrapper_cfg(SGD), type=kind)


KINDS = [
    'OptimWrapper', 'OLOROptimWrapper', 'AmpOLOROptimWrapper',
    'L2SPOptimWrapper'
]


@pytest.mark.parametrize('kind', KINDS)
def test_theta0_is_the_weights_at_training_start(kind):
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg(kind))
    anchor = find_anchor(ow.optimizer)
    assert anchor.theta0 is None  # not at build time: weights load later
    with torch.no_grad():  # load_from / init_weights happen in between
        model.backbone.conv1.weight.fill_(0.5)
    ow.initialize_count_status(model, 0, 10)
    assert anchor.theta0 is not None
    first = anchor.anchored_params.index(model.backbone.conv1.weight)
    assert torch.equal(anchor.theta0[first],
                       torch.full_like(anchor.theta0[first], 0.5))


@pytest.mark.parametrize('kind', KINDS)
def test_resuming_without_a_restored_theta0_is_refused(kind):
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg(kind))
    with pytest.raises(
            RuntimeError,
            match='resumes at iteration 4 but no '
            'theta0 was restored'):
        ow.initialize_count_status(model, 4, 10)


def test_alias_built_without_the_constructor_takes_theta0_there_too():
    model = ToyClassifier()
    groups = olor_mm.layerwise_rollback_groups(model, rollback_max=0.2)
    ow = olor_mm.OLOROptimWrapper(torch.optim.SGD(groups, lr=0.1))
    ow.initialize_count_status(model, 0, 10)
    assert ow.theta0 is not None


def test_a_deep_copy_starts_training_on_itself():
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg('OptimWrapper'))
    twin = copy.deepcopy(ow)
    assert twin.initialize_count_status.__self__ is twin
    assert ow.initialize_count_status.__self__ is ow
