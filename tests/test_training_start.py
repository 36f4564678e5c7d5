"""One rule for theta0, owned by the core (olor_mm.core.theta0): a tensor's
theta0 is its value just before its first update, unless a loaded state
dict restored it. Under every wrapper and method olor-mm builds, in any
order a runner calls ``initialize_count_status`` and loads weights; a
resume (MMEngine's message hub says iteration > 0) without a restored
theta0 is refused; a deep copy of the wrapper is guarded."""
import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from toy import ToyClassifier, olor_wrapper_cfg, penalty_wrapper_cfg

import olor_mm
from olor_mm.core.theta0 import find_anchor

SGD = dict(type='SGD', lr=0.1)


def _cfg(kind):
    if kind == 'l2sp':
        return penalty_wrapper_cfg('l2sp', SGD, alpha=0.1, beta=0.01)
    return dict(olor_wrapper_cfg(SGD), type=kind)


KINDS = ['OptimWrapper', 'OLOROptimWrapper', 'AmpOLOROptimWrapper', 'l2sp']


def _step(model, ow):
    with ow.optim_context(model):
        loss = model(torch.ones(2, 3, 8, 8), mode='tensor').sum()
    ow.update_params(loss)


@pytest.mark.parametrize('kind', KINDS)
def test_theta0_is_the_weights_at_the_first_step(kind):
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg(kind))
    anchor = find_anchor(ow.optimizer)
    assert anchor.theta0 is None  # not at build time: weights load later
    # what a runner does in between, in either order: count status (the
    # Runner after load_or_resume, FlexibleRunner's strategies before it),
    # then init_weights / load_from
    ow.initialize_count_status(model, 0, 10)
    assert anchor.theta0 is None
    with torch.no_grad():
        model.backbone.conv1.weight.fill_(0.5)
    _step(model, ow)
    first = anchor.anchored_params.index(model.backbone.conv1.weight)
    assert torch.equal(anchor.theta0[first],
                       torch.full_like(anchor.theta0[first], 0.5))


@pytest.mark.parametrize('kind', KINDS)
def test_resuming_without_a_restored_theta0_is_refused(kind):
    """The runner's message hub holds iteration 4 at the first step (a
    resume whose checkpoint had no optimizer state): refused, and the
    message does not send the user to load_from (that anchors to the
    fine-tuned weights)."""
    MessageHub.get_instance('olor_resume_probe_' + kind)  # the run's hub
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg(kind))
    MessageHub.get_current_instance().update_info('iter', 4)
    with pytest.raises(RuntimeError) as err:
        _step(model, ow)
    assert 'resumed at iteration 4 but no theta0 was restored' in str(
        err.value)
    assert 'save_optimizer' in str(err.value)
    assert 'load_from' not in str(err.value)


def test_a_stale_message_hub_is_no_resume():
    """A hub left by an earlier run in the process (iteration 7) and not
    written since the wrapper was built is not this run's."""
    MessageHub.get_instance('olor_stale_probe').update_info('iter', 7)
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg('OptimWrapper'))
    _step(model, ow)
    assert find_anchor(ow.optimizer).theta0 is not None


def test_alias_built_without_the_constructor_takes_theta0_there_too():
    model = ToyClassifier()
    groups = olor_mm.layerwise_rollback_groups(model, rollback_max=0.2)
    ow = olor_mm.OLOROptimWrapper(torch.optim.SGD(groups, lr=0.1))
    assert ow.theta0 is None
    _step(model, ow)
    assert ow.theta0 is not None


def test_a_deep_copy_without_its_anchor_refuses_to_step():
    model = ToyClassifier()
    ow = build_optim_wrapper(model, _cfg('OptimWrapper'))
    _step(model, ow)
    twin = copy.deepcopy(ow)
    assert find_anchor(twin.optimizer) is None
    with pytest.raises(RuntimeError, match='no anchor is attached'):
        twin.optimizer.step()
