"""Every ``paramwise_cfg`` MMEngine's DefaultOptimWrapperConstructor takes
gives each parameter the same optimizer options under
LayerwiseRollbackConstructor, merged into few groups or not.

The expectation is MMEngine's own constructor on the same model and keys:
for every parameter, its lr, weight decay, momentum and every other option
the optimizer reads must be equal; olor-mm only adds ``rollback`` and
``layer_id``.

And what the constructor refuses or says: an optimizer without param
groups, ``rollback`` inside ``custom_keys``, FSDP without
``use_orig_params`` (misuse probe A3, B16; third probe), groups of lr 0 and
schedules that lift them.
"""
import pytest
import torch
import torch.nn as nn
from mmcv.ops import DeformConv2dPack
from mmengine.optim import build_optim_wrapper
from toy import TOY_LAYERS, ToyClassifier, olor_wrapper_cfg, sgd_wrapper_cfg

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


def test_A3_an_optimizer_without_param_groups_is_named():
    cfg = olor_wrapper_cfg(dict(type='LBFGS', lr=0.1))
    with pytest.raises(ValueError, match="optimizer.type='LBFGS'"):
        build_optim_wrapper(ToyClassifier(), cfg)


def test_B16_rollback_inside_custom_keys_is_refused():
    cfg = olor_wrapper_cfg(
        dict(type='SGD', lr=0.1),
        layer_patterns=TOY_LAYERS,
        custom_keys={'backbone.layer1': dict(rollback=0.)})
    with pytest.raises(
            ValueError,
            match=r"custom_keys\['backbone.layer1'\] "
            r"sets \['rollback'\]"):
        build_optim_wrapper(ToyClassifier(), cfg)
    # MMEngine copies any other option into the group: so does OLOR's
    cfg['paramwise_cfg']['custom_keys'] = {
        'backbone.layer1': dict(lr_mult=.5, momentum=0.5)
    }
    model = ToyClassifier()
    groups = build_optim_wrapper(model, cfg).optimizer.param_groups
    layer1 = {id(p) for p in model.backbone.layer1.parameters()}
    hit = [g for g in groups if {id(p) for p in g['params']} & layer1]
    assert hit
    for group in hit:
        assert group['lr'] == pytest.approx(0.05)
        assert group['momentum'] == 0.5


def test_a_group_with_lr_0_is_accepted_and_listed_frozen(mm_log):
    """MMEngine freezes a layer with lr_mult=0: it never moves, so its
    rollback is a no-op; the table lists it with 0 trainable tensors."""
    model = ToyClassifier()
    wrapper = sgd_wrapper_cfg()
    wrapper['paramwise_cfg']['custom_keys'] = {
        'backbone.layer1': dict(lr_mult=0.)
    }
    ow = build_optim_wrapper(model, wrapper)
    table = next(r.getMessage() for r in mm_log
                 if 'OLOR layer-wise rollback' in r.getMessage())
    row = next(line.split() for line in table.splitlines()
               if line.split()[:1] == ['1'])  # layer1.0
    assert row[2] == '0'
    before = model.backbone.layer1[0][0].weight.detach().clone()
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    ow.step()
    assert torch.equal(model.backbone.layer1[0][0].weight, before)


def test_a_schedule_that_lifts_an_lr_of_0_is_said(mm_log):
    """CosineAnnealingLR toward eta_min > 0 raises an lr_mult=0 group's lr
    (MMEngine's schedule, not a freeze): the 'frozen' layer trains, so it is
    said once, with the fix."""
    from mmengine.optim.scheduler import CosineAnnealingLR
    model = ToyClassifier()
    wrapper = sgd_wrapper_cfg()
    wrapper['paramwise_cfg']['custom_keys'] = {
        'backbone.layer1': dict(lr_mult=0.)
    }
    ow = build_optim_wrapper(model, wrapper)
    frozen = [g for g in ow.optimizer.param_groups if g['lr'] == 0]
    assert frozen
    sched = CosineAnnealingLR(ow, T_max=4, eta_min=1e-3, by_epoch=False)
    for _ in range(3):
        model(torch.rand(2, 3, 8, 8)).sum().backward()
        ow.step()
        ow.zero_grad()
        sched.step()
    assert all(g['lr'] > 0 for g in frozen)  # MMEngine lifted them
    said = [
        r.getMessage() for r in mm_log if 'built with lr 0' in r.getMessage()
    ]
    assert len(said) == len(frozen) and 'eta_min=0' in said[0]


def test_fsdp_without_use_orig_params_is_named(tmp_path):
    """One process, gloo: FSDP without ``use_orig_params`` flattens the
    parameters; the constructor names the wrapper's argument (before:
    "'backbone' holds no parameter")."""
    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        model = FSDP(ToyClassifier(), use_orig_params=False, device_id='cpu')
        with pytest.raises(ValueError) as err:
            build_optim_wrapper(model, olor_wrapper_cfg())
    finally:
        dist.destroy_process_group()
    assert 'use_orig_params=True' in str(err.value)
