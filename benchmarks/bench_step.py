"""How much does the rollback cost? The optimizer step, timed.

For real parameter sets (built from mmdet / mmseg models, no weights):
ResNet-50 backbone, Mask R-CNN R50-FPN, Swin-T UperNet, it times the
optimizer step alone -- ``optim_wrapper.step()`` from a ready gradient, the
rollback included, warm-up excluded, median of ``--reps`` repetitions, one
process -- for

- plain AdamW (``foreach=True``) vs OLOR-AdamW,
- plain SGD with momentum (``foreach=True``) vs OLOR-SGD,
- a baseline written here with the reference code's structure: a Python loop
  over the parameters doing the per-tensor Adam update, then the rollback,

each in two parameter-group layouts: one group per parameter (what MMEngine's
constructors build whenever ``paramwise_cfg`` is set) and merged groups (one
per distinct set of options). It also reports the memory the rollback holds
(theta0 bytes against parameter bytes), the cost of a bfloat16 ``theta0``
(``anchor_dtype``: memory saved, max abs deviation after ``--drift-steps``
steps against a float32 theta0), and the end-to-end overhead on a real
training iteration of the demo Mask R-CNN (the rollback's time inside each
iteration, and interleaved blocks of iterations with and without it).

Writes ``benchmarks/results/bench_step_<device>.{json,md}``.

    python benchmarks/bench_step.py            # under 5 minutes on 2 cores
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import time
import warnings

import torch
import torch.nn as nn
import torch.utils.benchmark as benchmark

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
import sys

sys.path.append(osp.join(ROOT, 'tools'))  # tools/olor_mm_tools
warnings.filterwarnings('ignore')

from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope

import olor_mm
from olor_mm.core.param_groups import merge_param_groups
from olor_mm.tools.tables import markdown_table


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


class _WithBackbone(nn.Module):

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone


def dump_shapes(names, path):
    """Parameter names, shapes and requires_grad of each set, as JSON.

    A GPU machine without mmcv's ops can then rebuild the same parameter
    sets with :func:`from_shapes` (``--from-shapes``).
    """
    sets = {}
    for name in names:
        model = build_model(name)
        sets[name] = dict(
            params=[(n, list(p.shape), p.requires_grad)
                    for n, p in model.named_parameters()],
            # class names, so that the rebuilt modules find the same layer
            # schemes (olor_mm.layers.layer_schemes looks them up by name)
            classes={n: type(m).__name__
                     for n, m in model.named_modules()})
    with open(path, 'w') as f:
        json.dump(sets, f)


def from_shapes(entry):
    """A module with exactly these parameters (names, shapes, frozen) and
    module class names."""
    classes = entry['classes']

    def module(name):
        return type(classes.get(name, 'Module'), (nn.Module, ), {})()

    root = module('')
    for name, shape, requires_grad in entry['params']:
        *path, leaf = name.split('.')
        mod = root
        for k, part in enumerate(path):
            if part not in mod._modules:
                mod.add_module(part, module('.'.join(path[:k + 1])))
            mod = mod._modules[part]
        mod.register_parameter(
            leaf,
            nn.Parameter(
                torch.randn(shape) * 0.02, requires_grad=requires_grad))
    return root


_SHAPES = {}


def build_model(name):
    """A model of the named parameter set, without weights."""
    if name in _SHAPES:
        return from_shapes(_SHAPES[name])
    if name in ('ResNet-50 backbone', 'ResNet-18 backbone'):
        from mmdet.registry import MODELS
        depth = int(name[7:9])
        with DefaultScope.overwrite_default_scope('mmdet'):
            return _WithBackbone(
                MODELS.build(
                    dict(type='ResNet', depth=depth, frozen_stages=-1)))
    path, scope = {
        'Mask R-CNN R50-FPN': ('configs/mmdet/'
                               'mask-rcnn_r50_fpn_olor_1x_coco.py', 'mmdet'),
        'Swin-T UperNet':
        ('configs/mmseg/'
         'upernet_swin-t_olor_8xb2-160k_ade20k-512x512.py', 'mmseg'),
    }[name]
    cfg = Config.fromfile(osp.join(ROOT, path))
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    if scope == 'mmseg':  # SyncBN needs a process group; same parameters
        cfg.model.backbone.pop('init_cfg', None)
        text = json.dumps(cfg.model.to_dict()).replace('"SyncBN"', '"BN"')
        model_cfg = json.loads(text)
    else:
        model_cfg = cfg.model
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(model_cfg)


def olor_cfg(optimizer, merge_groups=True, anchor_dtype=None):
    return dict(
        type='OLOROptimWrapper',
        optimizer=optimizer,
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=dict(
            rollback_max=0.01,
            merge_groups=merge_groups,
            anchor_dtype=anchor_dtype,
            custom_keys={'backbone': dict(decay_mult=0.)}))


def wrappers(model, optimizer, layout, device, anchor_dtype=None):
    """(plain OptimWrapper, OLOROptimWrapper) over the same groups."""
    # MMEngine's layout (one group per parameter), merged below if asked
    ow = build_optim_wrapper(
        model,
        olor_cfg(optimizer, merge_groups=False, anchor_dtype=anchor_dtype))
    groups = [dict(g) for g in ow.optimizer.param_groups]
    if layout == 'merged':
        groups = merge_param_groups(groups)
    kind = getattr(torch.optim, optimizer['type'])
    opts = {k: v for k, v in optimizer.items() if k != 'type'}
    # torch's fastest implementation on the device: fused kernels on CUDA,
    # multi-tensor (foreach) on the CPU
    impl = dict(fused=True) if device.type == 'cuda' else dict(foreach=True)

    def fresh(groups):
        return kind([dict(g, params=list(g['params'])) for g in groups],
                    **impl, **opts)

    plain = OptimWrapper(fresh(groups))
    rolled = fresh(groups)
    olor_mm.attach_rollback(rolled, anchor_dtype=anchor_dtype)
    olor = olor_mm.OLOROptimWrapper(rolled)
    olor.snapshot_theta0()
    return plain, olor


def set_grads(model, seed=0):
    g = torch.Generator(device='cpu').manual_seed(seed)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = (torch.randn(p.shape, generator=g) * 1e-3).to(p.device)


def time_pair(step_a, step_b, device, reps, warmup=3):
    """Medians of two steps timed alternately, so that the machine's drift
    (this CPU is shared and noisy) falls on both alike.

    Hand-written: ``torch.utils.benchmark`` times one statement at a time
    (``Timer``, ``Compare`` of separate measurements) and has no
    interleaved A/B timing, which is what cancels the drift here.
    """
    for _ in range(warmup):
        step_a()
        step_b()
    times = ([], [])
    for _ in range(reps):
        for step, out in ((step_a, times[0]), (step_b, times[1])):
            _sync(device)
            t = time.perf_counter()
            step()
            _sync(device)
            out.append(time.perf_counter() - t)
    return statistics.median(times[0]), statistics.median(times[1])


def time_step(step, device, reps, warmup=3):
    """Median seconds of one ``step()`` over ``reps`` timed calls after
    ``warmup`` calls: ``torch.utils.benchmark.Timer`` times each call (it
    synchronizes CUDA itself; ``device`` is kept for the callers), with
    torch's current thread count (its default is one thread)."""
    timer = benchmark.Timer(
        stmt='step()',
        globals={'step': step},
        num_threads=torch.get_num_threads())
    timer.timeit(max(warmup, 1))
    return statistics.median(timer.timeit(1).median for _ in range(reps))


@torch.no_grad()
def reference_loop_step(params,
                        anchors,
                        lams,
                        state,
                        lr=1e-4,
                        beta1=0.9,
                        beta2=0.999,
                        eps=1e-8,
                        wd=0.05):
    """The reference code's structure: a Python loop over parameters, each
    doing its Adam(W) update and then its rollback, one tensor at a time."""
    state['step'] += 1
    t = state['step']
    for p, p0, lam, m, v in zip(params, anchors, lams, state['m'], state['v']):
        g = p.grad
        p.mul_(1 - lr * wd)
        m.mul_(beta1).add_(g, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (v / (1 - beta2**t)).sqrt_().add_(eps)
        p.addcdiv_(m, denom, value=-lr / (1 - beta1**t))
        if lam > 0:
            p.add_(p0 - p, alpha=lam)


def bench_set(name, device, reps):
    model = build_model(name).to(device)
    set_grads(model)
    rows = []
    memory = None  # measured on the AdamW per-parameter pair below
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    adamw = dict(type='AdamW', lr=1e-4, weight_decay=0.05)
    sgd = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4)
    for opt_name, opt in (('AdamW', adamw), ('SGD-momentum', sgd)):
        for layout in ('per-param', 'merged'):
            plain, olor = wrappers(model, opt, layout, device)
            t_plain, t_olor = time_pair(plain.step, olor.step, device, reps)
            rows.append(
                dict(
                    set=name,
                    optimizer=opt_name,
                    layout=layout,
                    impl='fused' if device.type == 'cuda' else 'foreach',
                    groups=len(olor.optimizer.param_groups),
                    plain_ms=t_plain * 1e3,
                    olor_ms=t_olor * 1e3,
                    ratio=t_olor / t_plain))
            if opt_name == 'AdamW' and layout == 'per-param':
                params = list(olor.anchored_params)
                rolled = {id(p) for p in params}
                others = [
                    p for p in model.parameters()
                    if p.requires_grad and id(p) not in rolled
                ]
                group_of = {
                    id(p): g
                    for g in olor.optimizer.param_groups for p in g['params']
                }
                lams = [group_of[id(p)]['rollback']
                        for p in params] + [0.0] * len(others)
                all_params = params + others
                anchors = list(olor.theta0) + [None] * len(others)
                state = dict(
                    step=0,
                    m=[torch.zeros_like(p) for p in all_params],
                    v=[torch.zeros_like(p) for p in all_params])
                t_ref, t_olor2 = time_pair(
                    lambda: reference_loop_step(all_params, anchors, lams,
                                                state), olor.step, device,
                    reps)
                rows[-1]['reference_loop_ms'] = t_ref * 1e3
                rows[-1]['reference_loop_over_olor'] = t_ref / t_olor2
                theta0_bytes = sum(t.numel() * t.element_size()
                                   for t in olor.theta0)
                param_bytes = sum(p.numel() * p.element_size()
                                  for p in model.parameters())
                memory = dict(
                    set=name,
                    params=n_params,
                    rolled_params=sum(t.numel() for t in olor.theta0),
                    param_mib=param_bytes / 2**20,
                    theta0_mib=theta0_bytes / 2**20,
                    theta0_over_params=theta0_bytes / param_bytes)
            del plain, olor
    per_param, merged = rows[0], rows[1]  # AdamW, both layouts
    per_param['reference_loop_over_olor_merged'] = (
        per_param['reference_loop_ms'] / merged['olor_ms'])
    return rows, memory


def importance_cost(name, device, reps):
    """The importance-weighted rollback's step against OLOR's (AdamW,
    merged groups, the same groups and implementation): its one extra
    multi-tensor pass (``lam_eff * w``), and the memory ``w`` holds."""
    from olor_mm.core.importance import attach_importance_rollback
    model = build_model(name).to(device)
    set_grads(model)
    opt = dict(type='AdamW', lr=1e-4, weight_decay=0.05)
    plain, olor = wrappers(model, opt, 'merged', device)
    impl = dict(fused=True) if device.type == 'cuda' else dict(foreach=True)
    rolled = torch.optim.AdamW([
        dict(g, params=list(g['params'])) for g in plain.optimizer.param_groups
    ],
                               lr=opt['lr'],
                               weight_decay=opt['weight_decay'],
                               **impl)
    handle = attach_importance_rollback(rolled)
    handle.snapshot()
    g = torch.Generator(device='cpu').manual_seed(1)
    handle.set_fisher({
        id(p): torch.rand(p.shape, generator=g).to(device)**4
        for p in handle.anchored_params
    })
    iw = OptimWrapper(rolled)
    t_olor, t_iw = time_pair(olor.step, iw.step, device, reps)
    w_bytes = sum(w.numel() * w.element_size()
                  for w in handle.importance.values())
    return dict(
        set=name,
        olor_ms=t_olor * 1e3,
        iw_ms=t_iw * 1e3,
        ratio=t_iw / t_olor,
        w_mib=w_bytes / 2**20,
        theta0_mib=sum(t.numel() * t.element_size()
                       for t in handle.theta0) / 2**20)


#: the upstream configs' paramwise_cfg of each set (what users run today)
UPSTREAM_PARAMWISE = {
    'Swin-T UperNet':
    dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }),
}


def stock_and_olormm(model, name, optimizer, device):
    """(stock, olor-mm) wrappers over ``model`` with the same optimizer.

    stock: what an upstream config builds today: MMEngine's
    ``DefaultOptimWrapperConstructor`` with the upstream ``paramwise_cfg``
    (one group per parameter when it is set, else one group), a plain
    ``OptimWrapper``, torch's default implementation. olor-mm: the shipped
    OLOR set-up, ``LayerwiseRollbackConstructor`` with merged groups and the
    kernel it picks, the rollback on (theta0 taken).
    """
    from mmengine.optim import DefaultOptimWrapperConstructor
    upstream = UPSTREAM_PARAMWISE.get(name)
    stock = DefaultOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(optimizer)), upstream)(
            model)
    paramwise = dict(
        rollback_max=0.01,
        custom_keys={
            **(upstream or {}).get('custom_keys', {}), 'backbone':
            dict(decay_mult=0.)
        })
    olormm = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            optimizer=dict(optimizer),
            constructor='LayerwiseRollbackConstructor',
            paramwise_cfg=paramwise))
    olor_mm.find_rollback(olormm.optimizer).snapshot()
    return stock, olormm


def bench_stock(name, device, reps):
    """Step of the stock MMEngine set-up vs olor-mm's, same optimizer."""
    model = build_model(name).to(device)
    set_grads(model)
    rows = []
    for opt_name, opt in (('AdamW',
                           dict(type='AdamW', lr=1e-4,
                                weight_decay=0.05)), ('SGD-momentum',
                                                      dict(
                                                          type='SGD',
                                                          lr=0.02,
                                                          momentum=0.9,
                                                          weight_decay=1e-4))):
        stock, olormm = stock_and_olormm(model, name, opt, device)
        t_stock, t_olormm = time_pair(stock.step, olormm.step, device, reps)
        opt_kwargs = olormm.optimizer.defaults
        kernel = ('fused' if opt_kwargs.get('fused') else
                  'foreach' if opt_kwargs.get('foreach') else 'default')
        rows.append(
            dict(
                set=name,
                optimizer=opt_name,
                stock_groups=len(stock.optimizer.param_groups),
                olormm_groups=len(olormm.optimizer.param_groups),
                olormm_kernel=kernel,
                stock_ms=t_stock * 1e3,
                olormm_ms=t_olormm * 1e3,
                ratio=t_olormm / t_stock))
        del stock, olormm
    return rows


def anchor_dtype_cost(device, steps):
    """bfloat16 theta0 vs float32 theta0 on the ResNet-18 backbone.

    Same init, same gradients (four random sets, cycled with random signs),
    AdamW at lr 1e-3 with rollback_max 0.01: the weights' deviation between
    the two runs after ``steps`` steps.
    """
    out = {}
    finals = {}
    for dtype in (None, 'bfloat16'):
        torch.manual_seed(0)
        model = build_model('ResNet-18 backbone').to(device)
        ow = build_optim_wrapper(
            model,
            olor_cfg(
                dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                anchor_dtype=dtype))
        ow.snapshot_theta0()
        g = torch.Generator(device='cpu').manual_seed(1)
        params = [p for p in model.parameters() if p.requires_grad]
        grads = [[
            torch.randn(p.shape, generator=g).to(device) for p in params
        ] for _ in range(4)]
        signs = torch.randint(0, 2, (steps, ), generator=g) * 2 - 1
        for step in range(steps):
            for p, grad in zip(params, grads[step % 4]):
                p.grad = grad * float(signs[step])
            ow.step()
        finals[dtype] = [p.detach().clone() for p in params]
        out[dtype or 'float32'] = dict(
            theta0_mib=sum(t.numel() * t.element_size()
                           for t in ow.theta0) / 2**20,
            step_ms=time_step(ow.step, device, 10) * 1e3)
    err = max(
        float((a - b).abs().max())
        for a, b in zip(finals[None], finals['bfloat16']))
    scale = max(float(a.abs().max()) for a in finals[None])
    drift = max(
        float((a - b).abs().max())
        for a, b in zip(finals[None], [t.float() for t in ow.theta0]))
    out['max_abs_error_after_steps'] = err
    out['max_abs_weight'] = scale
    out['max_abs_drift_from_theta0'] = drift
    out['steps'] = steps
    return out


def end_to_end(iters, blocks):
    """Rollback overhead on real iterations of the demo Mask R-CNN."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    # scipy (with mmdet, or the bench extra): only this part needs it, the
    # others run on a bare GPU machine (--from-shapes)
    from scipy import stats

    from olor_mm_tools.clocks import Clocks
    from olor_mm_tools.demo_data import make_instance_sets
    data = make_instance_sets('/tmp/olor_bench_data', num_train=32, num_val=4)
    cfg = Config.fromfile(
        osp.join(ROOT,
                 'configs/demo/mask-rcnn_r18-tiny_demo-downstream_olor.py'))
    root = data['downstream']
    cfg.train_dataloader.dataset.data_root = root + '/'
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=iters * blocks * 2 + 10)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.load_from = None
    cfg.work_dir = '/tmp/olor_bench_work'
    cfg.log_level = 'WARNING'
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=-1, save_last=False)
    cfg.param_scheduler = None  # constant lr: every iteration alike
    runner = Runner.from_cfg(cfg)
    clocks = Clocks(warmup=10)
    clocks.attach(runner)

    def rolling(i):
        """10 warm-up iterations (i < 0), then blocks of ``iters`` with
        the rollback on and off in turn."""
        return i < 0 or (i // iters) % 2 == 0

    class Gate(Hook):

        def before_train(self, runner):
            handle = olor_mm.find_rollback(runner.optim_wrapper.optimizer)
            rollback = handle.rollback

            def gated():
                if rolling(clocks.count - clocks.warmup):
                    rollback()

            handle.rollback = gated

    runner.register_hook(Gate())
    runner.train()
    rolled = [rolling(i) for i in range(len(clocks.iters))]
    on = [t for t, r in zip(clocks.iters, rolled) if r]
    off = [t for t, r in zip(clocks.iters, rolled) if not r]
    rb = [t for t, r in zip(clocks.rollbacks, rolled) if r]
    mean_on, mean_off = statistics.mean(on), statistics.mean(off)
    # Welch's t-test (unequal variances) of mean(on) - mean(off)
    welch = stats.ttest_ind(on, off, equal_var=False)
    low, high = welch.confidence_interval(0.95)
    return dict(
        model='demo Mask R-CNN (R18/4 FPN, 128 px, batch 4)',
        iterations_each=len(on),
        iter_s_with=mean_on,
        iter_s_without=mean_off,
        ab_overhead=(mean_on - mean_off) / mean_off,
        ab_overhead_95ci=[float(low) / mean_off,
                          float(high) / mean_off],
        ab_p_value=float(welch.pvalue),
        rollback_ms_median=statistics.median(rb) * 1e3,
        rollback_share=statistics.median(rb) / statistics.median(on))


def _rollback_tables(result):
    """The OLOR-vs-plain step table and the memory table."""

    def ref(r, key, fmt='.1f'):
        return '-' if r.get('reference_loop_ms') is None else format(
            r[key], fmt)

    steps = [(r['set'], f"{r['optimizer']} ({r['impl']})", r['layout'],
              str(r['groups']), f"{r['plain_ms']:.1f}", f"{r['olor_ms']:.1f}",
              f"{r['ratio']:.3f}", ref(r, 'reference_loop_ms'),
              ref(r, 'reference_loop_over_olor'),
              ref(r, 'reference_loop_over_olor_merged'))
             for r in result['steps']]
    memory = [(m['set'], f"{m['params']:,}", f"{m['rolled_params']:,}",
               f"{m['param_mib']:.1f}", f"{m['theta0_mib']:.1f}",
               f"{m['theta0_over_params']:.2f}") for m in result['memory']]
    return [
        'The rollback alone: OLOR vs the same optimizer without it, '
        'same layout and implementation:', '',
        markdown_table(
            steps,
            ('parameter set', 'optimizer (torch impl)', 'layout', 'groups',
             'plain (ms)', 'OLOR (ms)', 'OLOR / plain', 'reference loop (ms)',
             'reference / OLOR (same layout)', 'reference / OLOR (merged)'),
            'lllrrrrrrr'), '',
        markdown_table(memory,
                       ('parameter set', 'parameters', 'rolled back',
                        'parameter MiB', 'theta0 MiB', 'theta0 / parameters'),
                       'lrrrrr'), ''
    ]


def markdown(result):
    lines = [
        f"Device: {result['device']}; torch {result['torch']}; "
        f"{result['date']}. Median of {result['reps']} steps after "
        'warm-up; ratios from the same run.', ''
    ]
    if result.get('stock'):
        lines += [
            'Stock MMEngine set-up (the upstream `paramwise_cfg`, '
            "plain OptimWrapper, torch's default implementation) vs "
            "olor-mm's (merged groups, the kernel it picks, rollback "
            'on):', ''
        ]
        stock = [(r['set'], r['optimizer'],
                  str(r['stock_groups']), f"{r['stock_ms']:.1f}",
                  str(r['olormm_groups']), r['olormm_kernel'],
                  f"{r['olormm_ms']:.1f}", f"{r['ratio']:.3f}")
                 for r in result['stock']]
        lines.append(
            markdown_table(stock,
                           ('parameter set', 'optimizer', 'stock groups',
                            'stock (ms)', 'olor-mm groups', 'olor-mm kernel',
                            'olor-mm (ms)', 'olor-mm / stock'), 'llrrrlrr'))
        lines.append('')
    if result['steps']:
        lines += _rollback_tables(result)
    if result.get('importance'):
        rows = [(r['set'], f"{r['olor_ms']:.1f}", f"{r['iw_ms']:.1f}",
                 f"{r['ratio']:.3f}", f"{r['theta0_mib']:.1f}",
                 f"{r['w_mib']:.1f}") for r in result['importance']]
        lines += [
            "The importance-weighted rollback (paramwise_cfg.importance="
            "'fisher') against OLOR's, AdamW, merged groups, the same "
            'groups and implementation:', '',
            markdown_table(
                rows,
                ('parameter set', 'OLOR (ms)', 'importance-weighted (ms)',
                 'ratio', 'theta0 MiB', 'w MiB'), 'lrrrrr'), ''
        ]
    a = result.get('anchor_dtype')
    if a:
        lines += [
            '', f"anchor_dtype (ResNet-18 backbone, AdamW, "
            f"{a['steps']} steps): theta0 "
            f"{a['float32']['theta0_mib']:.1f} MiB (float32) -> "
            f"{a['bfloat16']['theta0_mib']:.1f} MiB (bfloat16); step "
            f"{a['float32']['step_ms']:.1f} -> "
            f"{a['bfloat16']['step_ms']:.1f} ms; max abs difference "
            f"of the weights {a['max_abs_error_after_steps']:.2e} "
            f"(largest weight {a['max_abs_weight']:.2f}, largest "
            f"drift from theta0 {a['max_abs_drift_from_theta0']:.2e})."
        ]
    e = result.get('end_to_end')
    if e:
        lo, hi = e['ab_overhead_95ci']
        ci = f'95 % CI {100 * lo:+.2f} % .. {100 * hi:+.2f} %'
        # Welch's interval and p-value; results written before them hold a
        # normal-approximation interval and no p-value
        if e.get('ab_p_value') is not None:
            ci = f"Welch {ci}, p = {e['ab_p_value']:.2g}"
        lines += [
            '', f"End to end ({e['model']}): the rollback takes "
            f"{e['rollback_ms_median']:.2f} ms of a "
            f"{e['iter_s_with'] * 1e3:.0f} ms iteration "
            f"({100 * e['rollback_share']:.2f} %). Iterations "
            "alternately with and without the rollback, "
            f"{e['iterations_each']} each way: "
            f"{100 * e['ab_overhead']:+.2f} % ({ci})."
        ]
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--reps', type=int, default=20)
    parser.add_argument(
        '--sets',
        nargs='+',
        default=['ResNet-50 backbone', 'Mask R-CNN R50-FPN', 'Swin-T UperNet'])
    parser.add_argument(
        '--parts',
        nargs='+',
        default=['stock', 'rollback', 'importance', 'anchor', 'e2e'],
        choices=['stock', 'rollback', 'importance', 'anchor', 'e2e'],
        help='stock: the stock MMEngine set-up vs olor-mm; '
        'rollback: OLOR vs plain per layout; importance: the '
        "importance-weighted rollback vs OLOR's; anchor: "
        'bfloat16 theta0; e2e: a demo training iteration')
    parser.add_argument('--drift-steps', type=int, default=1000)
    parser.add_argument(
        '--e2e-iters',
        type=int,
        default=1,
        help='iterations per interleaved block (0: skip)')
    parser.add_argument(
        '--e2e-blocks',
        type=int,
        default=50,
        help='blocks each way (with and without rollback)')
    parser.add_argument(
        '--out', default=osp.join(ROOT, 'benchmarks', 'results'))
    parser.add_argument(
        '--dump-shapes',
        metavar='JSON',
        help='write the parameter sets\' shapes and exit')
    parser.add_argument(
        '--from-shapes',
        metavar='JSON',
        help='rebuild the parameter sets from such a file '
        '(for a machine without mmcv\'s ops)')
    args = parser.parse_args(argv)
    if args.dump_shapes:
        dump_shapes(args.sets + ['ResNet-18 backbone'], args.dump_shapes)
        return
    if args.from_shapes:
        with open(args.from_shapes) as f:
            _SHAPES.update(json.load(f))
    device = torch.device(args.device)
    t0 = time.time()
    result = dict(
        device=(torch.cuda.get_device_name(device) if device.type == 'cuda'
                else f'CPU ({platform.processor() or platform.machine()}, '
                f'{torch.get_num_threads()} threads)'),
        torch=torch.__version__,
        date=time.strftime('%Y-%m-%d'),
        reps=args.reps,
        steps=[],
        memory=[],
        stock=[],
        importance=[])
    from olor_mm.tools.progress import bar
    todo = [(part, name) for part in ('stock', 'rollback', 'importance')
            if part in args.parts for name in args.sets]
    progress = bar(
        len(todo) + ('anchor' in args.parts) + ('e2e' in args.parts),
        'bench_step',
        unit='part')
    for part, name in todo:
        if part == 'stock':
            rows = bench_stock(name, device, args.reps)
            result['stock'] += rows
            for r in rows:
                progress.write(
                    f"{r['set']:20s} {r['optimizer']:13s} stock "
                    f"{r['stock_ms']:8.1f} ms  olor-mm {r['olormm_ms']:8.1f}"
                    f" ms ({r['olormm_kernel']})  x{r['ratio']:.3f}")
        elif part == 'importance':
            r = importance_cost(name, device, args.reps)
            result['importance'].append(r)
            progress.write(f"{r['set']:20s} AdamW merged OLOR "
                           f"{r['olor_ms']:8.1f} ms  importance-weighted "
                           f"{r['iw_ms']:8.1f} ms  x{r['ratio']:.3f}")
        else:
            rows, memory = bench_set(name, device, args.reps)
            result['steps'] += rows
            result['memory'].append(memory)
            for r in rows:
                progress.write(
                    f"{r['set']:20s} {r['optimizer']:13s} {r['layout']:9s} "
                    f"plain {r['plain_ms']:8.1f} ms  OLOR "
                    f"{r['olor_ms']:8.1f} ms  x{r['ratio']:.3f}")
        progress.update(1)
    if 'anchor' in args.parts and args.drift_steps:
        result['anchor_dtype'] = anchor_dtype_cost(device, args.drift_steps)
        progress.update(1)
    if 'e2e' in args.parts and args.e2e_iters:
        result['end_to_end'] = end_to_end(args.e2e_iters, args.e2e_blocks)
        progress.update(1)
    progress.close()
    result['wall_s'] = time.time() - t0
    text = markdown(result)
    print('\n' + text)
    os.makedirs(args.out, exist_ok=True)
    tag = 'cpu' if device.type == 'cpu' else 'gpu'
    with open(osp.join(args.out, f'bench_step_{tag}.json'), 'w') as f:
        json.dump(result, f, indent=1)
    with open(osp.join(args.out, f'bench_step_{tag}.md'), 'w') as f:
        f.write(text)
    print(f'wall time {result["wall_s"]:.0f} s')


if __name__ == '__main__':
    main()
