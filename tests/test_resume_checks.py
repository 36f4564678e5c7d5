"""One resume check, owned by the anchor (issue 25): on ``load_state_dict``
the anchor's pre-hook refuses a state dict written with another set-up
(which tensors, how numbered) or another param-group layout, naming the
key, for the plain-PyTorch API (``attach_rollback(opt, setup=groups.setup)``)
as for MMEngine's constructor and the penalty wrappers; edited
hyper-parameters are the checkpoint's, as torch restores group values."""
import logging

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from toy import ToyClassifier, penalty_wrapper_cfg

from olor_mm import attach_rollback, layerwise_rollback_groups
from olor_mm.core.theta0 import saved_theta0

OLOR = dict(pretrained_prefixes=('backbone', ), rollback_max=0.2)


def _step(model, opt):
    opt.zero_grad()
    model.backbone(torch.ones(1, 3, 8, 8)).sum().backward()
    opt.step()


def _plain(model, **kwargs):
    groups = layerwise_rollback_groups(model, **dict(OLOR, **kwargs))
    opt = torch.optim.SGD(groups, lr=0.1)
    return opt, attach_rollback(opt, setup=groups.setup)


def _saved_plain(**kwargs):
    model = ToyClassifier()
    opt, _ = _plain(model, **kwargs)
    _step(model, opt)
    return model, opt.state_dict()


@pytest.mark.parametrize('key, value, saved', [
    ('layer_unit', 'param', "layer_unit='block'"),
    ('pretrained_prefixes', ('backbone.layer1', 'backbone.layer2'),
     "pretrained_prefixes=('backbone',)"),
    ('exclude_prefixes', ('backbone.conv1', ), 'exclude_prefixes=None'),
])
def test_plain_api_refuses_a_state_of_another_set_up(key, value, saved):
    model, state = _saved_plain()
    kwargs = {'exclude' if key == 'exclude_prefixes' else key: value}
    opt, _ = _plain(model, **kwargs)
    with pytest.raises(ValueError) as err:
        opt.load_state_dict(state)
    # the set-up is named before anything else about the state differs
    assert f'written with {saved}' in str(err.value)
    assert 'numbered differently' in str(err.value)
    assert 'load_from=<ckpt> and resume=False' in str(err.value)


def test_plain_api_without_setup_still_checks_theta0():
    """No setup given: the set-up is not compared (as before), but theta0
    still must cover the anchored tensors."""
    model, state = _saved_plain()
    groups = layerwise_rollback_groups(model, layer_unit='param', **OLOR)
    opt = torch.optim.SGD(groups, lr=0.1)
    attach_rollback(opt)
    with pytest.raises(
            ValueError,
            match='param groups.*the model, the '
            'pretrained prefixes or the param-group options'):
        opt.load_state_dict(state)


def test_plain_api_resume_applies_the_checkpoints_rollback(caplog):
    """rollback_max edited since the checkpoint: torch restores every
    group's ``rollback`` (lam_i) and the handle says so, as under MMEngine."""
    model, state = _saved_plain()
    opt, handle = _plain(model, rollback_max=0.05)
    with caplog.at_level(logging.WARNING, logger='olor_mm'):
        opt.load_state_dict(state)
    assert "the checkpoint's OLOR hyper-parameters apply" in caplog.text
    assert 'rollback_max=0.2' in caplog.text
    assert opt.param_groups[0]['rollback'] == pytest.approx(0.2)
    assert handle.config['rollback_max'] == 0.2


def test_plain_api_same_set_up_resumes():
    model, state = _saved_plain()
    opt, handle = _plain(model)
    opt.load_state_dict(state)
    saved = saved_theta0(state)
    for k, t in zip(sorted(saved), handle.theta0):
        assert torch.equal(t, saved[k])


def _l2sp(model, merge_groups=True, layer_unit='block'):
    cfg = penalty_wrapper_cfg(
        'L2SPOptimWrapper', dict(type='SGD', lr=0.1), alpha=0.1, beta=0.01)
    cfg['paramwise_cfg'].update(
        merge_groups=merge_groups, layer_unit=layer_unit)
    return build_optim_wrapper(model, cfg)


@pytest.mark.parametrize('saved_merged', [True, False])
def test_penalty_wrapper_resume_names_merge_groups(saved_merged):
    """L2-SP's own anchor checks the layout the constructor's set-up says
    (the guard used to be the constructor's alone)."""
    model = ToyClassifier()
    saved = _l2sp(model, merge_groups=saved_merged)
    saved.initialize_count_status(model, 0, 10)
    state = saved.state_dict()
    assert state['l2sp_anchor']['config']['merge_groups'] is saved_merged
    other = _l2sp(model, merge_groups=not saved_merged)
    with pytest.raises(
            ValueError, match=f'merge_groups={saved_merged} to resume it'):
        other.load_state_dict(state)
    _l2sp(model, merge_groups=saved_merged).load_state_dict(state)


def test_penalty_wrapper_resume_refuses_another_numbering():
    model = ToyClassifier()
    saved = _l2sp(model)
    saved.initialize_count_status(model, 0, 10)
    with pytest.raises(ValueError, match="L2-SP anchor.*layer_unit='block'"):
        _l2sp(model, layer_unit='param').load_state_dict(saved.state_dict())
