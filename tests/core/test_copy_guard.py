"""A copied anchored optimizer (olor_mm/core/copy_guard.py): refuses to
step and to save until the rollback is reattached (misuse probe A10, A11;
fourth probe P4-D12)."""
import copy
import io

import pytest
import torch
from toy import (ProbeNet, ToyClassifier, probe_setup, probe_step, toy_groups,
                 toy_step)

import olor_mm  # noqa: F401
from olor_mm import attach_rollback


@pytest.mark.parametrize('copy_by', ['deepcopy', 'pickle'])
def test_A10_A11_a_copied_optimizer_stops_until_the_rollback_is_reattached(
        copy_by):
    model = ToyClassifier()
    opt = torch.optim.SGD(toy_groups(model, rollback_power=0.), lr=0.1)
    attach_rollback(opt, scale_with_lr=False)
    toy_step(model, opt)
    if copy_by == 'deepcopy':
        model2, opt2 = copy.deepcopy((model, opt))
    else:
        buf = io.BytesIO()
        torch.save(dict(model=model, opt=opt), buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=False)
        model2, opt2 = loaded['model'], loaded['opt']
    with pytest.raises(RuntimeError, match='no anchor is attached'):
        toy_step(model2, opt2, 1)  # the hooks are gone: no silent plain SGD
    # the documented way: attach, then load the original's state
    attach_rollback(opt2, scale_with_lr=False)
    opt2.load_state_dict(opt.state_dict())
    toy_step(model, opt, 1)
    toy_step(model2, opt2, 1)
    for a, b in zip(model.parameters(), model2.parameters()):
        torch.testing.assert_close(a, b)


def test_P4_D12_a_copied_optimizer_refuses_to_save_without_theta0():
    """``copy.deepcopy(optimizer).state_dict()`` held no theta0 (the copy
    has no hooks), without a word. Now the copy refuses to save as it
    refuses to step, naming the way to keep a copy; a state written after
    ``remove()`` names why it has no theta0 when loaded."""
    torch.manual_seed(0)
    model = ProbeNet()
    opt, handle = probe_setup(model)
    probe_step(model, opt)
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
    fresh, _ = probe_setup(ProbeNet())
    fresh.load_state_dict(copy.deepcopy(opt.state_dict()))
    # removed, then saved: no theta0, and the load says why
    handle.remove()
    saved = opt.state_dict()
    again, _ = probe_setup(ProbeNet())
    with pytest.raises(KeyError) as err:
        again.load_state_dict(saved)
    assert 'handle.remove()' in str(err.value)
