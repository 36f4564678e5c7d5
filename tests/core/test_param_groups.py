"""layerwise_rollback_groups (olor_mm/core/param_groups.py): what it
takes, tied weights, numbers of any numeric type, and the warning of
rollback_power=0; its bad inputs (``BAD_INPUTS``)."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from bad_input import bad_input_cases, check_bad_input
from mmengine.optim import build_optim_wrapper
from toy import (TOY_LAYERS, ToyClassifier, frozen_toy, plain_toy_groups,
                 sgd_wrapper_cfg)

import olor_mm  # noqa: F401
from olor_mm import attach_rollback, layerwise_rollback_groups


def test_C2_parameters_instead_of_the_model_is_named():
    with pytest.raises(TypeError, match=r'not model.parameters\(\)'):
        layerwise_rollback_groups(ToyClassifier().parameters())


class Tied(nn.Module):
    """A head registered first whose weight is the backbone's (tied)."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 3, bias=False)
        self.backbone = nn.Module()
        self.backbone.embed = nn.Linear(3, 3)
        self.backbone.blocks = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
        self.head.weight = self.backbone.embed.weight

    def forward(self, x):
        return self.head(self.backbone.blocks(self.backbone.embed(x)))


@pytest.mark.parametrize('path', ['merged', 'per-parameter', 'plain'])
def test_a_tied_weight_is_updated_once_and_rolls_back_as_pretrained(path):
    torch.manual_seed(0)
    model = Tied()
    if path == 'plain':
        opt = torch.optim.SGD(
            layerwise_rollback_groups(
                model, ('backbone', ), rollback_max=0.5, rollback_power=0.),
            lr=0.1)
        attach_rollback(opt)
    else:
        opt = build_optim_wrapper(
            model,
            dict(
                optimizer=dict(type='SGD', lr=0.1),
                constructor='LayerwiseRollbackConstructor',
                paramwise_cfg=dict(
                    rollback_max=0.5,
                    rollback_power=0.,
                    merge_groups=path == 'merged'))).optimizer
    tied = model.backbone.embed.weight
    listed = [p for g in opt.param_groups for p in g['params']]
    assert sum(p is tied for p in listed) == 1
    assert len({id(p) for p in listed}) == len(listed)
    group = next(
        g for g in opt.param_groups if any(p is tied for p in g['params']))
    assert group['rollback'] == 0.5  # pretrained by its backbone name
    theta0 = tied.detach().clone()
    model(torch.ones(1, 3)).sum().backward()
    grad = tied.grad.clone()
    opt.step()
    once = theta0 - 0.1 * grad  # one SGD step, then the lerp
    torch.testing.assert_close(tied.detach(), once + 0.5 * (theta0 - once))


def test_numpy_and_tensor_numbers_are_accepted():
    for value in (np.float32(0.05), np.float64(0.05), torch.tensor(0.05)):
        groups = layerwise_rollback_groups(
            ToyClassifier(), rollback_max=value, layer_patterns=TOY_LAYERS)
        assert groups[0]['rollback'] == pytest.approx(0.05)
        ow = build_optim_wrapper(ToyClassifier(),
                                 sgd_wrapper_cfg(rollback_max=value))
        assert ow.optimizer.param_groups[0]['rollback'] == pytest.approx(0.05)


def test_rollback_power_0_says_rollback_min_is_unused(mm_log):
    layerwise_rollback_groups(
        ToyClassifier(), ('backbone', ),
        rollback_max=0.01,
        rollback_min=0.005,
        rollback_power=0)
    text = ' '.join(r.getMessage() for r in mm_log)
    assert 'rollback_min=0.005 is not used' in text
    assert 'rollback_power > 0' in text


# (id, call, exception, the key, the fix)
BAD_INPUTS = [
    ('plain API: rollback_max out of range',
     lambda: plain_toy_groups(rollback_max=2.0), ValueError,
     r'rollback_max=2\.0', r'set it in \[0, 1\]'),
    ('plain API: pretrained_options setting rollback',
     lambda: plain_toy_groups(pretrained_options=dict(rollback=0.5)),
     ValueError, r"pretrained_options has 'rollback'", r'use rollback_max'),
    ('plain API: every parameter frozen',
     lambda: olor_mm.layerwise_rollback_groups(frozen_toy()), ValueError,
     r'requires_grad=False', r'no trainable parameter'),
]


@bad_input_cases(BAD_INPUTS)
def test_bad_input_names_the_key_and_the_fix(call, error, key, fix):
    check_bad_input(call, error, key, fix)
