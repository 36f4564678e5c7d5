"""The rollback on the torch optimizer: plain PyTorch API, any wrapper.

The same short training must give bit-identical weights through every path
that drives the optimizer (MMEngine's OptimWrapper or AmpOptimWrapper built
by the constructor, OLOROptimWrapper, a hand-built torch optimizer with
``attach_rollback``), and equal the optimizer followed by an explicit lerp.

Attaching to what is not a torch optimizer, after a load, after
``remove()``, to Adagrad, with numpy / tensor lam, and groups added later
(misuse probe A1, A6, A8, A12; the never-silent and third probes);
attaching twice, a group's lam outside [0, 1], a model on the meta device
(``BAD_INPUTS``).
"""
import copy
import logging
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn as nn
from bad_input import bad_input_cases, check_bad_input
from mmengine.optim import OptimWrapper, build_optim_wrapper
from paths import ROOT
from toy import (TOY_LAYERS, ToyClassifier, plain_toy_groups, toy_groups,
                 toy_sgd, toy_step)

import olor_mm  # noqa: F401
from olor_mm import attach_rollback, find_rollback, layerwise_rollback_groups
from olor_mm.core.theta0 import saved_theta0

OLOR = dict(
    rollback_max=0.3,
    rollback_min=0.05,
    rollback_power=1.0,
    layer_patterns=TOY_LAYERS)


def _batches(n=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, 8, 8, generator=g),
             [*torch.randint(0, 3, (4, ), generator=g)]) for _ in range(n)]


def _loss(model, batch):
    x, y = batch
    return model(x, y, mode='loss')['loss']


def _train_wrapper(model, ow, batches):
    for b in batches:
        ow.update_params(_loss(model, b))


def _train_torch(model, opt, batches):
    for b in batches:
        opt.zero_grad()
        _loss(model, b).backward()
        opt.step()


def _wrapper(kind, optimizer, impl='auto'):
    return dict(
        type=kind,
        optimizer=optimizer,
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=dict(OLOR, optimizer_impl=impl))


@pytest.mark.parametrize('impl', ['torch_default', 'fused'])
@pytest.mark.parametrize(
    'optimizer', [
        dict(type='SGD', lr=0.1, momentum=0.9),
        dict(type='AdamW', lr=1e-2, weight_decay=0.05),
    ],
    ids=lambda o: o['type'])
def test_every_path_gives_bit_identical_weights(optimizer, impl):
    """The same kernel on every path (the constructor merges groups, the
    plain API makes one per layer: bit-identical all the same)."""
    torch.manual_seed(0)
    start = ToyClassifier()
    batches = _batches()
    kernel = dict(fused=True) if impl == 'fused' else {}
    kwargs = dict({k: v
                   for k, v in optimizer.items() if k != 'type'}, **kernel)
    results = {}
    for kind in ('OptimWrapper', 'OLOROptimWrapper'):
        model = copy.deepcopy(start)
        ow = build_optim_wrapper(model, _wrapper(kind, optimizer, impl))
        _train_wrapper(model, ow, batches)
        results[kind] = model
    model = copy.deepcopy(start)
    groups = layerwise_rollback_groups(model, ('backbone', ), **OLOR)
    opt = getattr(torch.optim, optimizer['type'])(groups, **kwargs)
    attach_rollback(opt)
    _train_torch(model, opt, batches)
    results['plain API'] = model

    # the reference: the optimizer alone, then p.lerp_(theta0, lam) by hand
    ref = copy.deepcopy(start)
    ref_opt = getattr(torch.optim, optimizer['type'])(ref.parameters(),
                                                      **kwargs)
    # toy layers: stem 0, layer1.0 1, layer2.0 2, layer2.1 3 (n = 3)
    lam = [0.05 + (1 - i / 3) * 0.25 for i in range(4)]
    depth = {'conv1': 0, 'bn1': 0, 'layer1.0': 1, 'layer2.0': 2, 'layer2.1': 3}
    theta0 = {n: p.detach().clone() for n, p in ref.named_parameters()}
    for b in batches:
        ref_opt.zero_grad()
        _loss(ref, b).backward()
        ref_opt.step()
        with torch.no_grad():
            for n, p in ref.named_parameters():
                key = next(
                    (k for k in depth if n.startswith(f'backbone.{k}.')), None)
                if key is not None:
                    p.lerp_(theta0[n], lam[depth[key]])
    names = [n for n, _ in start.named_parameters()]
    for kind, model in results.items():
        for n, p, q in zip(names, model.parameters(), ref.parameters()):
            assert torch.equal(p, results['OptimWrapper'].get_parameter(n)), \
                (kind, n)
            # the lerp by hand rounds like _foreach_lerp_, the optimizer is
            # the same single-tensor code: equal up to float rounding
            torch.testing.assert_close(
                p, q, rtol=1e-6, atol=1e-7, msg=f'{kind} {n}')
    assert not torch.equal(results['plain API'].backbone.conv1.weight,
                           start.backbone.conv1.weight)


def test_groups_carry_rollback_and_layer_id():
    model = ToyClassifier(blocks=(1, 2))
    model.backbone.layer1.requires_grad_(False)  # frozen: takes no depth
    groups = layerwise_rollback_groups(
        model, ('backbone', ),
        rollback_max=0.4,
        rollback_min=0.1,
        rollback_power=2.0,
        layer_patterns=TOY_LAYERS,
        pretrained_options=dict(weight_decay=0.0))
    # stem, layer2.0, layer2.1 are layers 0..2 (layer1 is frozen);
    # lam_i = 0.1 + (1 - i/2)^2 * 0.3
    assert [g['layer_id'] for g in groups] == [0, 1, 2, None]
    assert [g['rollback']
            for g in groups] == pytest.approx([0.4, 0.1 + 0.3 / 4, 0.1, 0.0])
    assert [len(g['params']) for g in groups] == [3, 2, 2, 2]
    assert all(g['weight_decay'] == 0.0 for g in groups[:3])
    assert 'weight_decay' not in groups[3]


def test_theta0_is_taken_at_the_first_step_and_saved_in_the_state_dict():
    model = ToyClassifier()
    opt = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1)
    handle = attach_rollback(opt)
    assert handle.theta0 is None
    before = opt.state_dict()  # saved before the first step: no theta0
    assert before['olor_rollback']['taken'] is False
    assert saved_theta0(before) == {}
    with torch.no_grad():  # weights loaded after the optimizer was built
        model.backbone.conv1.weight.fill_(0.25)
    _train_torch(model, opt, _batches(1))
    assert torch.equal(handle.theta0[0],
                       torch.full_like(handle.theta0[0], 0.25))
    saved = saved_theta0(opt.state_dict())
    assert len(saved) == len(handle.anchored_params) > 0
    assert torch.equal(saved[0], handle.theta0[0])


def test_state_round_trip_resumes_identically():
    torch.manual_seed(0)
    start = ToyClassifier()
    batches = _batches(6)

    def build(model):
        opt = torch.optim.AdamW(
            layerwise_rollback_groups(model, **OLOR), lr=1e-2)
        return opt, attach_rollback(opt)

    straight = copy.deepcopy(start)
    opt, _ = build(straight)
    _train_torch(straight, opt, batches)

    first = copy.deepcopy(start)
    opt1, h1 = build(first)
    _train_torch(first, opt1, batches[:3])
    model_state = copy.deepcopy(first.state_dict())
    optim_state = copy.deepcopy(opt1.state_dict())

    second = ToyClassifier()
    second.load_state_dict(model_state)
    opt2, h2 = build(second)
    opt2.load_state_dict(optim_state)
    for a, b in zip(h2.theta0, h1.theta0):  # restored, not re-taken
        assert torch.equal(a, b)
    _train_torch(second, opt2, batches[3:])
    for p, q in zip(straight.parameters(), second.parameters()):
        assert torch.equal(p, q)


def test_loading_a_state_without_theta0_fails_when_something_is_anchored():
    model = ToyClassifier()
    plain = torch.optim.SGD(layerwise_rollback_groups(model, **OLOR), lr=0.1)
    opt = torch.optim.SGD(layerwise_rollback_groups(model, **OLOR), lr=0.1)
    attach_rollback(opt)
    with pytest.raises(KeyError, match="'olor_rollback'.*load_from"):
        opt.load_state_dict(plain.state_dict())


def test_legacy_olor_key_is_read():
    """Checkpoints of olor-mm 0.1 saved theta0 under 'olor'."""
    model = ToyClassifier()
    opt = torch.optim.SGD(layerwise_rollback_groups(model, **OLOR), lr=0.1)
    handle = attach_rollback(opt)
    handle.snapshot()
    state = opt.state_dict()
    state['olor'] = state.pop('olor_rollback')
    opt2 = torch.optim.SGD(layerwise_rollback_groups(model, **OLOR), lr=0.1)
    h2 = attach_rollback(opt2)
    opt2.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(h2.theta0, handle.theta0))


def test_remove_detaches_everything():
    torch.manual_seed(0)
    a = ToyClassifier()
    b = copy.deepcopy(a)
    opt_a = torch.optim.SGD(layerwise_rollback_groups(a, **OLOR), lr=0.1)
    handle = attach_rollback(opt_a)
    handle.remove()
    opt_b = torch.optim.SGD(layerwise_rollback_groups(b, **OLOR), lr=0.1)
    batches = _batches(3)
    _train_torch(a, opt_a, batches)
    _train_torch(b, opt_b, batches)
    assert all(
        torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert opt_a.state_dict().keys() == opt_b.state_dict().keys()
    assert olor_mm.find_rollback(opt_a) is None
    attach_rollback(opt_a)  # can be attached again


def test_attaching_twice_is_refused():
    opt = torch.optim.SGD(
        layerwise_rollback_groups(ToyClassifier(), **OLOR), lr=0.1)
    attach_rollback(opt)
    with pytest.raises(RuntimeError, match='remove'):
        attach_rollback(opt)


def test_nothing_anchored_leaves_the_optimizer_as_torch_made_it():
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    attach_rollback(opt)  # no group has 'rollback': inert, warns
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    ref.load_state_dict(opt.state_dict())
    assert opt.state_dict().keys() == {'state', 'param_groups'}
    assert 'initial_lr' not in opt.param_groups[0]


def test_grad_scaler_skip_and_no_gradient_skip_the_rollback():
    torch.manual_seed(0)
    model = ToyClassifier()
    opt = torch.optim.SGD(
        layerwise_rollback_groups(model, rollback_max=1.0, rollback_min=1.0),
        lr=0.1)
    handle = attach_rollback(opt, scale_with_lr=False)
    scaler = torch.amp.GradScaler('cpu', init_scale=4.0)
    handle.snapshot()
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)  # moved outside the optimizer
    moved = [p.detach().clone() for p in model.backbone.parameters()]
    scaler.scale(_loss(model, _batches(1)[0]) * float('inf')).backward()
    scaler.step(opt)  # inf gradients: the step is skipped ...
    scaler.update()
    for p, m in zip(model.backbone.parameters(), moved):
        assert torch.equal(p, m)  # ... and so is the rollback
    opt.zero_grad()
    model.head(torch.ones(1, 4)).sum().backward()  # no gradient to backbone
    opt.step()
    for p, m in zip(model.backbone.parameters(), moved):
        assert torch.equal(p, m)
    opt.zero_grad()
    _loss(model, _batches(1)[0]).backward()
    opt.step()  # lam = 1: every backbone tensor with a gradient is theta0
    for p, t in zip(handle.anchored_params, handle.theta0):
        assert torch.equal(p, t)


def test_plain_api_works_where_mmengine_cannot_be_imported(tmp_path):
    """A timm-style loop: no MMEngine, no OpenMMLab patches, no registry;
    every module of olor_mm.core and olor_mm.layers imports."""
    script = tmp_path / 'plain.py'
    script.write_text('''
import sys


class NoMMEngine:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmengine', 'mmcv', 'mmdet', 'mmseg'):
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)


sys.meta_path.insert(0, NoMMEngine())
try:
    import mmengine  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    raise SystemExit('mmengine imported')

import torch
import torch.nn as nn
import importlib
import pkgutil

import olor_mm
import olor_mm.core
import olor_mm.layers
from olor_mm import attach_rollback, layerwise_rollback_groups
from olor_mm.core.theta0 import saved_theta0

# the plain-torch subpackages, every module of them
for pkg in (olor_mm.core, olor_mm.layers):
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f'{pkg.__name__}.{info.name}')
assert not hasattr(olor_mm, 'OLOROptimWrapper'), dir(olor_mm)
assert not any(m.startswith(('mmengine', 'mmcv')) for m in sys.modules)
torch.manual_seed(0)
model = nn.Sequential()
model.backbone = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
model.head = nn.Linear(4, 2)
groups = layerwise_rollback_groups(model, pretrained_prefixes=('backbone',),
                                   rollback_max=1.0, rollback_min=1.0)
opt = torch.optim.AdamW(groups, lr=1e-2, weight_decay=0.05)
handle = attach_rollback(opt, scale_with_lr=True, anchor_dtype=None)
w0 = model.backbone[0].weight.detach().clone()
h0 = model.head.weight.detach().clone()
for _ in range(3):
    opt.zero_grad()
    model(torch.randn(8, 4)).pow(2).mean().backward()
    opt.step()
assert torch.equal(model.backbone[0].weight, w0)   # lam = 1: back at theta0
assert not torch.equal(model.head.weight, h0)     # the new layer trained
state = opt.state_dict()
assert torch.equal(state['param_groups'][0]['olor_rollback.theta0'][0], w0)
handle.remove()
assert 'olor_rollback' not in opt.state_dict()
print('plain ok')
''')
    out = subprocess.run([sys.executable, str(script)],
                         cwd=ROOT,
                         capture_output=True,
                         text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'plain ok' in out.stdout


def test_wrapper_level_keys_reach_the_rollback_under_any_wrapper():
    """What upstream --amp does: type rewritten, OLOR keys kept."""
    model = ToyClassifier()
    cfg = dict(
        type='OptimWrapper',
        scale_with_lr=False,
        anchor_dtype='bfloat16',
        optimizer=dict(type='SGD', lr=0.1),
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=dict(OLOR))
    ow = build_optim_wrapper(model, cfg)
    assert type(ow) is OptimWrapper
    handle = olor_mm.find_rollback(ow.optimizer)
    assert handle.scale_with_lr is False
    assert handle.anchor_dtype is torch.bfloat16
    cfg['paramwise_cfg'] = dict(OLOR, scale_with_lr=True)
    with pytest.raises(ValueError, match='scale_with_lr.*one place'):
        build_optim_wrapper(ToyClassifier(), cfg)


def test_A1_adagrad_fills_its_state_at_build_and_still_attaches():
    """Adagrad's state holds step 0 from __init__: not a past step."""
    model = ToyClassifier()
    pretrained = model.backbone.conv1.weight.detach().clone()
    opt = torch.optim.Adagrad(toy_groups(model, rollback_power=0.), lr=0.1)
    handle = attach_rollback(opt, scale_with_lr=False)
    toy_step(model, opt)
    torch.testing.assert_close(handle.theta0[0], pretrained)


@pytest.mark.parametrize('wrapped', ['optim_wrapper', 'duck'])
def test_A6_C1_attaching_to_a_wrapper_names_the_torch_optimizer(wrapped):
    model = ToyClassifier()
    if wrapped == 'optim_wrapper':
        target = build_optim_wrapper(model,
                                     dict(optimizer=dict(type='SGD', lr=0.1)))
        hint = r'attach_rollback\(wrapper.optimizer\)'
    else:
        target = types.SimpleNamespace(
            param_groups=toy_groups(model), state={}, step=lambda: None)
        hint = 'inside it'
    with pytest.raises(TypeError, match=f'torch.optim.Optimizer.*{hint}'):
        attach_rollback(target)


def test_A8_reattaching_after_remove_needs_theta0_restored():
    model = ToyClassifier()
    pretrained = model.backbone.conv1.weight.detach().clone()
    opt = torch.optim.SGD(toy_groups(model), lr=0.1)  # no momentum: no state
    handle = attach_rollback(opt)
    for s in range(3):
        toy_step(model, opt, s)
    saved = opt.state_dict()
    handle.remove()
    toy_step(model, opt, 3)  # removed on purpose: plain SGD, no error
    again = attach_rollback(opt)
    with pytest.raises(RuntimeError, match='anchored before'):
        toy_step(model, opt, 4)
    opt.load_state_dict(saved)  # theta0 comes back
    torch.testing.assert_close(again.theta0[0], pretrained)
    toy_step(model, opt, 4)


def test_A12_numpy_and_tensor_lam_in_hand_built_groups():
    model = ToyClassifier()
    twin = copy.deepcopy(model)
    for m, lam in ((model, np.float32(0.5)), (twin, torch.tensor(0.5))):
        opt = torch.optim.SGD([
            dict(params=list(m.backbone.parameters()), rollback=lam),
            dict(params=list(m.head.parameters()))
        ],
                              lr=0.1)
        attach_rollback(opt, scale_with_lr=False)
        assert opt.param_groups[0]['rollback'] == 0.5
        assert type(opt.param_groups[0]['rollback']) is float
        w = m.backbone.conv1.weight.detach().clone()
        toy_step(m, opt)
        g = m.backbone.conv1.weight.grad
        # Eq. 6 by hand: (w - lr g) + 0.5 (w - (w - lr g))
        torch.testing.assert_close(m.backbone.conv1.weight.detach(),
                                   w - 0.05 * g)


def test_attaching_after_load_state_dict_is_refused_naming_the_order():
    model = ToyClassifier()
    opt = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1,
        momentum=0.9)
    attach_rollback(opt)
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    opt.step()
    saved = opt.state_dict()
    fresh = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1,
        momentum=0.9)
    fresh.load_state_dict(saved)  # torch drops 'olor_rollback' here
    with pytest.raises(RuntimeError, match='no anchor is attached'):
        fresh.step()  # the bare optimizer would train without the rollback
    attach_rollback(fresh)
    with pytest.raises(RuntimeError, match='then load_state_dict'):
        fresh.step()  # theta0 would be the fine-tuned weights
    fresh.load_state_dict(saved)  # now with the rollback attached: restored
    assert find_rollback(fresh).theta0 is not None
    # the right order restores theta0
    right = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1,
        momentum=0.9)
    handle = attach_rollback(right)
    right.load_state_dict(saved)
    assert handle.theta0 is not None
    # and on purpose, from the current weights
    find_rollback(fresh).remove()
    attach_rollback(fresh, from_current_weights=True)
    fresh.step()


def test_a_param_group_added_later_is_anchored_and_resumes():
    torch.manual_seed(0)
    model = ToyClassifier()
    extra = nn.Linear(2, 2)
    opt = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1)
    handle = attach_rollback(opt)
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    opt.step()  # theta0 taken
    opt.add_param_group(dict(params=list(extra.parameters()), rollback=0.5))
    start = extra.weight.detach().clone()
    extra(torch.ones(1, 2)).sum().backward()
    opt.step()
    hat = start - 0.1 * extra.weight.grad
    torch.testing.assert_close(extra.weight.detach(),
                               hat + 0.5 * (start - hat))
    assert len(handle.theta0) == len(handle.anchored_params)
    saved = opt.state_dict()
    again = torch.optim.SGD(
        layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1)
    again_handle = attach_rollback(again)
    again.add_param_group(dict(params=list(extra.parameters()), rollback=0.5))
    again.load_state_dict(saved)  # resumable
    assert torch.equal(again_handle.theta0[-2], start)


def test_an_lr_raised_by_hand_in_plain_pytorch_is_said_plainly(mm_log):
    """``SGD(groups, lr=0)`` with the lr raised by hand: the warning says
    what happens and the plain-PyTorch fix, not MMEngine's config keys."""
    model, _ = toy_sgd()
    opt = torch.optim.SGD(
        layerwise_rollback_groups(model, ('backbone', ), rollback_max=0.1),
        lr=0.0)
    attach_rollback(opt)
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    opt.step()
    for g in opt.param_groups:
        g['lr'] = 0.1
    opt.step()
    text = ' '.join(r.getMessage() for r in mm_log
                    if r.levelno >= logging.WARNING)
    assert 'had lr 0 when theta0 was taken' in text
    assert 'requires_grad_(False)' in text
    for foreign in ('custom_keys', 'eta_min', 'frozen_stages'):
        assert foreign not in text


def _attach_twice():
    opt = torch.optim.SGD(plain_toy_groups(rollback_max=0.1), lr=0.1)
    olor_mm.attach_rollback(opt)
    olor_mm.attach_rollback(opt)


def _bad_group():
    groups = plain_toy_groups(rollback_max=0.1)
    groups[0]['rollback'] = 1.5
    olor_mm.attach_rollback(torch.optim.SGD(groups, lr=0.1))


def _meta():
    model = ToyClassifier().to('meta')
    opt = torch.optim.SGD(
        olor_mm.layerwise_rollback_groups(
            model, rollback_max=0.1, layer_patterns=TOY_LAYERS),
        lr=0.1)
    olor_mm.attach_rollback(opt).snapshot()


# (id, call, exception, the key, the fix)
BAD_INPUTS = [
    ('a model on the meta device', _meta, ValueError, r'meta device',
     r'materialise the model'),
    ('plain API: attached twice', _attach_twice, RuntimeError,
     r'already carries', r'\.remove\(\)'),
    ('plain API: a group rollback outside [0, 1]', _bad_group, ValueError,
     r'rollback=1\.5', r'rollback_max / rollback_min in \[0, 1\]'),
]


@bad_input_cases(BAD_INPUTS)
def test_bad_input_names_the_key_and_the_fix(call, error, key, fix):
    check_bad_input(call, error, key, fix)
