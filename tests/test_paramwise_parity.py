"""Every ``paramwise_cfg`` MMEngine's DefaultOptimWrapperConstructor takes
gives each parameter the same optimizer options under
LayerwiseRollbackConstructor, merged into few groups or not.

The expectation is MMEngine's own constructor on the same model and keys:
for every parameter, its lr, weight decay, momentum and every other option
the optimizer reads must be equal; olor-mm only adds ``rollback`` and
``layer_id``.
"""
import pytest
import torch.nn as nn
from mmcv.ops import DeformConv2dPack
from mmengine.optim import build_optim_wrapper

import olor_mm  # noqa: F401


class Net(nn.Module):
    """Convs (one depthwise), norms, biases, a DCN, a linear head."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.conv1 = nn.Conv2d(3, 4, 3, bias=False)
        self.backbone.bn1 = nn.BatchNorm2d(4)
        self.backbone.layer1 = nn.Sequential(
            nn.Conv2d(4, 4, 3, groups=4), nn.GroupNorm(2, 4),
            nn.Conv2d(4, 4, 1))
        self.backbone.layer2 = nn.Sequential(
            nn.Conv2d(4, 4, 3), nn.LayerNorm(4), nn.Conv2d(4, 4, 1))
        self.neck = DeformConv2dPack(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)


PARAMWISE = {
    'custom_keys':
    dict(
        custom_keys={
            'backbone.layer1': dict(lr_mult=0.1, decay_mult=0.5),
            'head': dict(lr_mult=10.)
        }),
    'norm_decay_mult':
    dict(norm_decay_mult=0.),
    'bias':
    dict(bias_lr_mult=2., bias_decay_mult=0.),
    'dwconv_decay_mult':
    dict(dwconv_decay_mult=0.),
    'flat_decay_mult':
    dict(flat_decay_mult=0.),
    'dcn_offset_lr_mult':
    dict(dcn_offset_lr_mult=0.1),
    'lr_mult 0 (frozen by lr)':
    dict(custom_keys={'backbone.layer2': dict(lr_mult=0.)}),
    'bypass_duplicate':
    dict(bypass_duplicate=True, norm_decay_mult=0.),
    'all at once':
    dict(
        custom_keys={'backbone.conv1': dict(lr_mult=0.5, decay_mult=0.)},
        norm_decay_mult=0.,
        bias_lr_mult=2.,
        bias_decay_mult=0.5,
        dwconv_decay_mult=0.,
        dcn_offset_lr_mult=0.1),
}


def _options(model, **wrapper):
    ow = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            optimizer=dict(
                type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4),
            **wrapper))
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for g in ow.optimizer.param_groups:
        for p in g['params']:
            out[names[id(p)]] = {
                k: v
                for k, v in g.items()
                if k not in ('params', 'rollback', 'layer_id', 'fused',
                             'foreach')
            }
    return out


@pytest.mark.parametrize('merge', [True, False], ids=['merged', 'per-param'])
@pytest.mark.parametrize('rollback_max', [0.0, 0.05])
@pytest.mark.parametrize(
    'paramwise', list(PARAMWISE.values()), ids=list(PARAMWISE))
def test_each_parameter_gets_mmengines_options(paramwise, merge, rollback_max):
    model = Net()
    stock = _options(model, paramwise_cfg=paramwise)
    olor = _options(
        model,
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=dict(
            paramwise,
            merge_groups=merge,
            rollback_max=rollback_max,
            optimizer_impl='torch_default'))
    assert olor.keys() == stock.keys()
    for name in stock:
        for key in ('lr', 'weight_decay', 'momentum', 'dampening', 'nesterov'):
            assert olor[name][key] == pytest.approx(stock[name][key]), (name,
                                                                        key)
    # the rules did something: at least two distinct (lr, decay) pairs
    assert len({(o['lr'], o['weight_decay']) for o in stock.values()}) >= 2
