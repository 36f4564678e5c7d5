"""Misuse a careful user can make, each with the outcome it must get.

One test per case of the misuse probe (docs/reliability.md, "Misuse
probe"): the case id is in the test's name. Each either works as a user
would expect (checked against a closed form or the weights by hand) or
stops with an error that names the key and the fix; none trains silently
with a wrong theta0 or without the rollback.
"""
import copy
import glob
import io
import types

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from toy import (TOY_LAYERS, ToyClassifier, olor_wrapper_cfg,
                 pretrained_checkpoint, runner_cfg, toy_runner)

import olor_mm
from olor_mm import (attach_rollback, find_rollback, layerwise_rollback_groups,
                     register_layer_scheme)
from olor_mm.core.penalty import L2SPAnchor
from olor_mm.core.theta0 import find_anchor


def groups(model, **kw):
    kw.setdefault('rollback_max', 0.2)
    kw.setdefault('layer_patterns', TOY_LAYERS)
    return layerwise_rollback_groups(model, **kw)


def step(model, opt, seed=0):
    torch.manual_seed(seed)
    opt.zero_grad()
    x = torch.rand(4, 3, 8, 8)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2,
                                                        0])).backward()
    opt.step()


def run_log(work_dir) -> str:
    """The text of the Runner's log file in ``work_dir``."""
    return open(glob.glob(str(work_dir / '*' / '*.log'))[0]).read()


# ------------------------------------------------------------- attaching
def test_A1_adagrad_fills_its_state_at_build_and_still_attaches():
    """Adagrad's state holds step 0 from __init__: not a past step."""
    model = ToyClassifier()
    pretrained = model.backbone.conv1.weight.detach().clone()
    opt = torch.optim.Adagrad(groups(model, rollback_power=0.), lr=0.1)
    handle = attach_rollback(opt, scale_with_lr=False)
    step(model, opt)
    torch.testing.assert_close(handle.theta0[0], pretrained)


def test_A3_an_optimizer_without_param_groups_is_named():
    cfg = olor_wrapper_cfg(dict(type='LBFGS', lr=0.1))
    with pytest.raises(ValueError, match="optimizer.type='LBFGS'"):
        build_optim_wrapper(ToyClassifier(), cfg)


@pytest.mark.parametrize('wrapped', ['optim_wrapper', 'duck'])
def test_A6_C1_attaching_to_a_wrapper_names_the_torch_optimizer(wrapped):
    model = ToyClassifier()
    if wrapped == 'optim_wrapper':
        target = build_optim_wrapper(model,
                                     dict(optimizer=dict(type='SGD', lr=0.1)))
        hint = r'attach_rollback\(wrapper.optimizer\)'
    else:
        target = types.SimpleNamespace(
            param_groups=groups(model), state={}, step=lambda: None)
        hint = 'inside it'
    with pytest.raises(TypeError, match=f'torch.optim.Optimizer.*{hint}'):
        attach_rollback(target)


def test_A8_reattaching_after_remove_needs_theta0_restored():
    model = ToyClassifier()
    pretrained = model.backbone.conv1.weight.detach().clone()
    opt = torch.optim.SGD(groups(model), lr=0.1)  # no momentum: no state
    handle = attach_rollback(opt)
    for s in range(3):
        step(model, opt, s)
    saved = opt.state_dict()
    handle.remove()
    step(model, opt, 3)  # removed on purpose: plain SGD, no error
    again = attach_rollback(opt)
    with pytest.raises(RuntimeError, match='anchored before'):
        step(model, opt, 4)
    opt.load_state_dict(saved)  # theta0 comes back
    torch.testing.assert_close(again.theta0[0], pretrained)
    step(model, opt, 4)


@pytest.mark.parametrize('copy_by', ['deepcopy', 'pickle'])
def test_A10_A11_a_copied_optimizer_stops_until_the_rollback_is_reattached(
        copy_by):
    model = ToyClassifier()
    opt = torch.optim.SGD(groups(model, rollback_power=0.), lr=0.1)
    attach_rollback(opt, scale_with_lr=False)
    step(model, opt)
    if copy_by == 'deepcopy':
        model2, opt2 = copy.deepcopy((model, opt))
    else:
        buf = io.BytesIO()
        torch.save(dict(model=model, opt=opt), buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=False)
        model2, opt2 = loaded['model'], loaded['opt']
    with pytest.raises(RuntimeError, match='no anchor is attached'):
        step(model2, opt2, 1)  # the hooks are gone: no silent plain SGD
    # the documented way: attach, then load the original's state
    attach_rollback(opt2, scale_with_lr=False)
    opt2.load_state_dict(opt.state_dict())
    step(model, opt, 1)
    step(model2, opt2, 1)
    for a, b in zip(model.parameters(), model2.parameters()):
        torch.testing.assert_close(a, b)


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
        step(m, opt)
        g = m.backbone.conv1.weight.grad
        # Eq. 6 by hand: (w - lr g) + 0.5 (w - (w - lr g))
        torch.testing.assert_close(m.backbone.conv1.weight.detach(),
                                   w - 0.05 * g)


def test_A15_rollback_switched_on_after_steps_without_is_refused():
    model = ToyClassifier()
    opt = torch.optim.SGD(groups(model, rollback_max=0.), lr=0.1)
    attach_rollback(opt, scale_with_lr=False)
    step(model, opt)
    for g in opt.param_groups:
        if g['layer_id'] is not None:
            g['rollback'] = 0.5
    with pytest.raises(
            RuntimeError, match='param group 0 rolls back.*when it first'):
        step(model, opt, 1)


def test_A15_under_a_runner_the_group_without_theta0_is_named(tmp_path):
    path, _ = pretrained_checkpoint(tmp_path)

    @HOOKS.register_module(force=True)
    class RollbackOnAt2(Hook):

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter == 2:
                for g in runner.optim_wrapper.optimizer.param_groups:
                    if g.get('layer_id') is not None:
                        g['rollback'] = 0.5

    runner = toy_runner(
        tmp_path / 'run',
        olor_wrapper_cfg(
            dict(type='SGD', lr=0.1),
            rollback_max=0.,
            layer_patterns=TOY_LAYERS),
        load_from=path,
        custom_hooks=[dict(type='RollbackOnAt2')])
    with pytest.raises(RuntimeError, match='param group 0 rolls back'):
        runner.train()


def test_A15b_lam_raised_on_a_group_without_theta0_is_refused():
    model = ToyClassifier()
    opt = torch.optim.SGD(groups(model), lr=0.1)
    attach_rollback(opt, scale_with_lr=False)
    step(model, opt)
    deep = next(g for g in opt.param_groups if g['layer_id'] == 3)
    assert deep['rollback'] == 0  # lam_n = rollback_min
    deep['rollback'] = 0.3
    with pytest.raises(RuntimeError, match=r'param group \d+ rolls back'):
        step(model, opt, 1)


@pytest.mark.parametrize('typo', ['haed', 'head.'])
def test_A16_a_misspelt_exclude_is_refused(typo):
    with pytest.raises(ValueError, match=f'entry {typo!r} matches no module'):
        groups(ToyClassifier(), pretrained_prefixes=('', ), exclude=typo)
    cfg = olor_wrapper_cfg(
        dict(type='SGD', lr=0.1),
        pretrained_prefixes=('', ),
        exclude_prefixes=(typo, ),
        layer_patterns=None)
    with pytest.raises(ValueError, match='exclude_prefixes'):
        build_optim_wrapper(ToyClassifier(), cfg)
    # spelt right: the head is left out, the backbone numbered as alone
    model = ToyClassifier()
    whole = groups(
        model, pretrained_prefixes=('', ), exclude='head', layer_patterns=None)
    alone = groups(model, layer_patterns=None)
    head = set(map(id, model.head.parameters()))

    def lams(found):
        return sorted((g['layer_id'], g['rollback']) for g in found
                      if g['layer_id'] is not None)

    assert lams(whole) == lams(alone)
    assert all(g['layer_id'] is None for g in whole
               if head & set(map(id, g['params'])))


def test_A22_a_capture_of_names_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r'must be digits.*\(\?:'):
        groups(ToyClassifier(), layer_patterns=[(r'^(conv1|bn1)\.', (0, ))])


# ------------------------------------------------------------- configs
def test_B12_l2sp_with_an_olor_wrappers_scale_with_lr_builds():
    wrapper = build_optim_wrapper(
        ToyClassifier(),
        dict(
            type='L2SPOptimWrapper',
            scale_with_lr=False,
            optimizer=dict(type='SGD', lr=0.1),
            constructor='LayerwiseRollbackConstructor',
            paramwise_cfg=dict(layer_patterns=TOY_LAYERS)))
    # the former type: the current spelling, with L2-SP on the optimizer
    assert type(wrapper) is OptimWrapper
    assert isinstance(find_anchor(wrapper.optimizer), L2SPAnchor)


def test_B4_a_param_scheduler_ramps_lam_i(tmp_path):
    """MMEngine's LinearParamScheduler on 'rollback': lam_i of every layer
    times start_factor + (1 - start_factor) * t / (end - 1) (MMEngine's
    total_iters = end - begin - 1), by hand: 0.2 * (0.5, 2/3, 5/6, 1)."""
    path, _ = pretrained_checkpoint(tmp_path)
    seen = []

    @HOOKS.register_module(force=True)
    class RecordLam(Hook):

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            groups = runner.optim_wrapper.optimizer.param_groups
            seen.append(
                next(g for g in groups if g.get('layer_id') == 0)['rollback'])

    toy_runner(
        tmp_path / 'run',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        load_from=path,
        custom_hooks=[dict(type='RecordLam')],
        param_scheduler=[
            dict(
                type='LinearParamScheduler',
                param_name='rollback',
                start_factor=0.5,
                end=4,
                by_epoch=False)
        ]).train()
    np.testing.assert_allclose(seen, [0.1, 0.4 / 3, 0.5 / 3, 0.2, 0.2, 0.2])


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


def test_B13_resuming_a_weights_only_checkpoint_names_file_and_fix(tmp_path):
    path, _ = pretrained_checkpoint(tmp_path)
    runner = toy_runner(
        tmp_path / 'run',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        load_from=path,
        resume=True,
        custom_hooks=[dict(type='RollbackDriftHook')])  # as shipped
    with pytest.raises(KeyError, match=f'{path}.*weights-only.*load_from'):
        runner.train()


def test_C2_parameters_instead_of_the_model_is_named():
    with pytest.raises(TypeError, match=r'not model.parameters\(\)'):
        layerwise_rollback_groups(ToyClassifier().parameters())


def test_C3_a_load_from_whose_keys_match_nothing_is_said(tmp_path):
    path, state = pretrained_checkpoint(tmp_path)
    backbone_only = tmp_path / 'backbone.pth'
    torch.save(
        dict(
            state_dict={
                k[len('backbone.'):]: v
                for k, v in state.items() if k.startswith('backbone.')
            }), backbone_only)
    runner = toy_runner(
        tmp_path / 'run',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        max_iters=1,
        load_from=str(backbone_only))
    runner.train()
    log = run_log(tmp_path / 'run')
    assert '(load_from) left 7 of the 7 pretrained tensors unchanged' in log
    assert "init_cfg=dict(type='Pretrained'" in log
    # the same run with the right checkpoint says nothing of the kind
    toy_runner(
        tmp_path / 'ok',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        max_iters=1,
        load_from=path).train()
    assert 'unchanged' not in run_log(tmp_path / 'ok')


def test_C6_print_layers_builds_a_plain_mmengine_config():
    from mmengine.config import Config
    from mmengine.registry import MODELS

    from olor_mm.tools import pretrained as make_pretrained
    MODELS.register_module(
        'ToyClassifierForC6', module=ToyClassifier, force=True)
    cfg = Config(
        dict(default_scope=None, model=dict(type='ToyClassifierForC6')))
    assert isinstance(make_pretrained.build_model(cfg), ToyClassifier)


# -------------------------------------------------------- NaN, messages
def _nan_hook(name, target):

    class NaNAt(Hook):

        def after_train_iter(self,
                             runner,
                             batch_idx,
                             data_batch=None,
                             outputs=None):
            if runner.iter == 4:
                module = runner.model
                for part in target.split('.'):
                    module = getattr(module, part)
                module.data.fill_(float('nan'))

    HOOKS.register_module(name, module=NaNAt, force=True)
    return dict(type=name)


@pytest.mark.parametrize('target', ['head.weight', 'backbone.layer2.1.0.bias'])
@pytest.mark.parametrize('guard', ['drift hook', 'olor-mm tools'])
def test_D1_nan_outside_the_rollback_is_never_saved(tmp_path, target, guard):
    """The head (not anchored) or the deepest layer (lam 0) diverged; the
    last complete checkpoint stays, with max_keep_ckpts=1 too: the drift
    hook of the shipped configs refuses before MMEngine's CheckpointHook
    removes the old one, and olor-mm's tools save with a hook that removes
    it only after the new one is complete."""
    from mmengine.config import Config

    from olor_mm.cli import build_runner
    path, _ = pretrained_checkpoint(tmp_path)
    hooks = [_nan_hook('NaNForD1', target)]
    if guard == 'drift hook':
        hooks.append(dict(type='RollbackDriftHook'))
    cfg = runner_cfg(
        tmp_path / 'run',
        olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS),
        max_iters=9,
        load_from=path,
        custom_hooks=hooks,
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=3,
                by_epoch=False,
                max_keep_ckpts=1)))
    runner = (
        Runner.from_cfg(cfg) if guard == 'drift hook' else build_runner(
            Config(cfg)))
    with pytest.raises(FloatingPointError, match='last_checkpoint names it'):
        runner.train()
    kept = sorted(p.name for p in (tmp_path / 'run').glob('*.pth'))
    assert kept == ['iter_3.pth']
    last = (tmp_path / 'run' / 'last_checkpoint').read_text().strip()
    assert last.endswith('iter_3.pth')
    state = torch.load(tmp_path / 'run' / 'iter_3.pth', weights_only=False)
    assert all(
        bool(torch.isfinite(v).all()) for v in state['state_dict'].values()
        if v.is_floating_point())


def test_E1_a_scheme_under_the_full_dotted_path_applies():
    mod = types.ModuleType('olor_probe_e1.models.backbone')
    exec(
        'import torch.nn as nn\n'
        'class E1Backbone(nn.Module):\n'
        '    def __init__(self):\n'
        '        super().__init__()\n'
        '        self.trunk = nn.ModuleList(nn.Linear(2, 2) for _ in '
        'range(3))\n'
        '        self.embed = nn.Linear(2, 2)\n', mod.__dict__)
    register_layer_scheme(
        'olor_probe_e1.models.backbone.E1Backbone',
        [(r'^embed\.', (-1, )), r'^trunk\.(\d+)\.'],
        force=True)
    net = nn.Module()
    net.backbone = mod.E1Backbone()
    found = layerwise_rollback_groups(net, rollback_max=0.3)
    embed = next(g for g in found
                 if g['params'][0] is net.backbone.embed.weight)
    assert (embed['layer_id'], embed['rollback']) == (0, 0.3)
    with pytest.raises(ValueError, match="'package.ClassName'"):
        register_layer_scheme('E1Backbone', [r'^trunk\.(\d+)\.'])


def test_E3_a_sweep_names_its_own_last_checkpoint(tmp_path):
    path, _ = pretrained_checkpoint(tmp_path)
    cfg = olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS)
    ckpt = dict(
        checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False))
    toy_runner(
        tmp_path / 'runA',
        cfg,
        max_iters=6,
        load_from=path,
        default_hooks=ckpt).train()
    run_b = toy_runner(
        tmp_path / 'runB',
        cfg,
        max_iters=9,
        load_from=path,
        default_hooks=ckpt,
        custom_hooks=[_nan_hook('NaNForE3', 'backbone.conv1.weight')])
    with pytest.raises(FloatingPointError) as err:
        run_b.train()
    assert 'runA' not in str(err.value)  # nothing of another run
    assert 'last_checkpoint names it' in str(err.value)
    last = (tmp_path / 'runB' / 'last_checkpoint').read_text().strip()
    assert last == str(tmp_path / 'runB' / 'iter_3.pth')


def test_E4_a_later_load_names_no_stale_checkpoint(tmp_path):
    path, _ = pretrained_checkpoint(tmp_path)
    cfg = olor_wrapper_cfg(dict(type='SGD', lr=0.1), layer_patterns=TOY_LAYERS)
    toy_runner(tmp_path / 'run', cfg, max_iters=3, load_from=path).train()
    toy_runner(tmp_path / 'run', cfg, max_iters=6, resume=True).train()
    model = ToyClassifier()
    opt = torch.optim.SGD(groups(model), lr=0.1)
    attach_rollback(opt)
    with pytest.raises(KeyError) as err:
        opt.load_state_dict(
            torch.optim.SGD(groups(model), lr=0.1).state_dict())
    assert 'iter_3.pth' not in str(err.value)
    assert find_rollback(opt) is not None and olor_mm is not None
