"""Small models and data for the tests: fast, deterministic, no downloads."""
import itertools

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, MODELS
from mmengine.runner import Runner
from torch.utils.data import Dataset


class ToyBackbone(nn.Module):
    """A ResNet-shaped backbone: stem, then ``layer{s}.{j}`` blocks."""

    def __init__(self, width=4, blocks=(1, 2), norm=True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        # norm=False: no batch statistics, so the gradient of a batch split
        # over data-parallel ranks equals the whole batch's
        self.bn1 = nn.BatchNorm2d(width) if norm else nn.Identity()
        for s, n in enumerate(blocks, 1):
            setattr(
                self, f'layer{s}',
                nn.Sequential(*[
                    nn.Sequential(
                        nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
                    for _ in range(n)
                ]))
        self.num_stages = len(blocks)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        for s in range(1, self.num_stages + 1):
            x = getattr(self, f'layer{s}')(x)
        return x


@MODELS.register_module(force=True)
class ToyClassifier(BaseModel):
    """``backbone`` (pretrained part) + ``head`` (new), MSE on one-hots."""

    def __init__(self,
                 width=4,
                 blocks=(1, 2),
                 num_classes=3,
                 norm=True,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.backbone = ToyBackbone(width, blocks, norm)
        self.head = nn.Linear(width, num_classes)

    def forward(self, inputs, labels=None, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        feat = self.backbone(inputs).mean((2, 3))
        logits = self.head(feat)
        if mode == 'loss':
            labels = torch.stack(labels) if isinstance(labels,
                                                       list) else labels
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        return logits


@DATASETS.register_module(force=True)
class ToyDataset(Dataset):
    """Deterministic images whose class is the brightest colour channel."""

    def __init__(self, size=24, seed=0, num_classes=3):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(size, 3, 8, 8, generator=g)
        self.y = torch.randint(0, num_classes, (size, ), generator=g)
        for i, c in enumerate(self.y):
            self.x[i, c] += 0.5

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


def pretrained_checkpoint(tmp_path, **model_kwargs):
    """A 'pretrained' ToyClassifier checkpoint unlike any random init.

    Returns its path and its state dict.
    """
    torch.manual_seed(123)
    model = ToyClassifier(**model_kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    path = str(tmp_path / 'pretrained.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return path, model.state_dict()


_RUN_IDS = itertools.count()


def runner_cfg(work_dir, optim_wrapper, max_iters=6, **kwargs):
    """An IterBasedTrainLoop Runner config on ToyClassifier / ToyDataset."""
    cfg = dict(
        model=dict(type='ToyClassifier'),
        work_dir=str(work_dir),
        # runners built in the same second would share MMEngine's logger
        # and visualizer (named by timestamp) without a name of their own
        experiment_name=f'toy{next(_RUN_IDS)}',
        train_dataloader=dict(
            dataset=dict(type='ToyDataset'),
            # InfiniteSampler: the order of DefaultSampler(shuffle=False)
            # without MMEngine's 2 s pause at every restart of the data
            sampler=dict(type='InfiniteSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=4,
            num_workers=0),
        optim_wrapper=optim_wrapper,
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=3,
                            by_epoch=False)),
        randomness=dict(seed=0),
        # what MMDetection's runtime sets; MMEngine < 0.9 needs it
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
            dist_cfg=dict(backend='gloo')),
        custom_imports=dict(imports=['olor_mm'], allow_failed_imports=False),
        default_scope=None,
        log_level='WARNING',
    )
    cfg.update(kwargs)
    return cfg


def toy_runner(work_dir, optim_wrapper, max_iters=6, **kwargs):
    """A Runner of :func:`runner_cfg`."""
    return Runner.from_cfg(
        runner_cfg(work_dir, optim_wrapper, max_iters=max_iters, **kwargs))


def resumed_runner(work_dir, optim_wrapper, load_from=None, **kwargs):
    """A Runner that resumes in ``work_dir``: from ``load_from`` or, when it
    is None, from MMEngine's ``last_checkpoint`` there."""
    if load_from is not None:
        kwargs['load_from'] = str(load_from)
    return toy_runner(work_dir, optim_wrapper, resume=True, **kwargs)


def resumed_with_saved_fisher(work_dir, make_wrapper, load_from, monkeypatch):
    """Train 3 iterations from ``load_from`` in ``work_dir``, then resume
    from ``iter_3.pth`` to the end; estimating the Fisher again on the
    resume fails the test (it must come from the checkpoint). Returns the
    resumed Runner, trained. ``make_wrapper()`` gives a fresh
    ``optim_wrapper`` config per run."""
    from olor_mm.engine import fisher_data
    toy_runner(
        work_dir, make_wrapper(), max_iters=3, load_from=load_from).train()
    monkeypatch.setattr(
        fisher_data, 'fisher_by_name',
        lambda *a, **k: pytest.fail('F estimated again on resume'))
    runner = resumed_runner(work_dir, make_wrapper(), work_dir / 'iter_3.pth')
    runner.train()
    return runner


#: Depth rules of ToyBackbone for paramwise_cfg.layer_patterns: the stem is
#: layer 0, then block j of stage s (ResNet-style), so layers are
#: conv1+bn1 (0), layer1.0 (1), layer2.0 (2), layer2.1 (3), ...
TOY_LAYERS = [(r'^(?:conv1|bn1)\.', (0, )), r'^layer(\d+)\.(\d+)\.']


def olor_wrapper_cfg(optimizer=None, **paramwise):
    """OLOR optim_wrapper dict with the interface of the core issue."""
    paramwise.setdefault('rollback_max', 0.2)
    return dict(
        type='OLOROptimWrapper',
        optimizer=optimizer or dict(type='SGD', lr=0.1, momentum=0.9),
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=paramwise)


#: the penalties' methods by the names of their former wrapper types
PENALTY_METHODS = dict(
    L2SPOptimWrapper=('OptimWrapper', 'l2sp'),
    AmpL2SPOptimWrapper=('AmpOLOROptimWrapper', 'l2sp'),
    EWCOptimWrapper=('OptimWrapper', 'ewc'),
    AmpEWCOptimWrapper=('AmpOLOROptimWrapper', 'ewc'))


def penalty_wrapper_cfg(method,
                        optimizer,
                        alpha,
                        beta,
                        wrapper=None,
                        **kwargs):
    """An L2-SP or EWC optim_wrapper dict in the documented spelling: the
    penalty on ``backbone``. ``method`` is ``'l2sp'`` / ``'ewc'`` (or a
    former wrapper type's name, which picks the wrapper type too)."""
    kind, method = PENALTY_METHODS.get(method,
                                       (wrapper or 'OptimWrapper', method))
    paramwise = {
        k: kwargs.pop(k)
        for k in list(kwargs) if k.startswith('fisher_') or k == 'anchor_dtype'
    }
    return dict(
        type=kind,
        optimizer=optimizer,
        constructor='LayerwiseRollbackConstructor',
        paramwise_cfg=dict(
            pretrained_prefixes=('backbone', ),
            method=method,
            alpha=alpha,
            beta=beta,
            **paramwise),
        **kwargs)


@MODELS.register_module(force=True)
class ToyUnevenClassifier(ToyClassifier):
    """Rank 0 skips ``backbone.layer2``: under DDP its rolled-back tensors
    get no gradient there (``find_unused_parameters=True``)."""

    def forward(self, inputs, labels=None, mode='tensor'):
        import torch.distributed as dist
        skip = dist.is_initialized() and dist.get_rank() == 0
        if not skip:
            return super().forward(inputs, labels, mode)
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        b = self.backbone
        x = b.layer1(torch.relu(b.bn1(b.conv1(inputs))))
        logits = self.head(x.mean((2, 3)))
        if mode == 'loss':
            labels = torch.stack(labels) if isinstance(labels,
                                                       list) else labels
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        return logits


def param_copies(runner_or_model):
    """``{name: detached copy}`` of a model's (or a Runner's) parameters."""
    model = getattr(runner_or_model, 'model', runner_or_model)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def sgd_wrapper_cfg(**paramwise):
    """OLOR with plain SGD (lr 0.1), rollback_max 0.2, the toy numbering."""
    paramwise.setdefault('rollback_max', 0.2)
    paramwise.setdefault('layer_patterns', TOY_LAYERS)
    return olor_wrapper_cfg(dict(type='SGD', lr=0.1), **paramwise)


def adamw_wrapper_cfg(**paramwise):
    """OLOR with AdamW (lr 1e-2, no weight decay), rollback_max 0.2, the
    toy numbering."""
    paramwise.setdefault('rollback_max', 0.2)
    paramwise.setdefault('layer_patterns', TOY_LAYERS)
    return olor_wrapper_cfg(
        dict(type='AdamW', lr=1e-2, weight_decay=0.0), **paramwise)


def toy_groups(model, **kw):
    """Layer-wise groups of ``model`` (rollback_max 0.2, toy numbering)."""
    from olor_mm import layerwise_rollback_groups
    kw.setdefault('rollback_max', 0.2)
    kw.setdefault('layer_patterns', TOY_LAYERS)
    return layerwise_rollback_groups(model, **kw)


def toy_step(model, opt, seed=0):
    """One cross-entropy step of a ToyClassifier on a seeded batch."""
    torch.manual_seed(seed)
    opt.zero_grad()
    x = torch.rand(4, 3, 8, 8)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2,
                                                        0])).backward()
    opt.step()


def toy_sgd(momentum=0.0, lam=0.3):
    """A seeded ToyClassifier and SGD over its groups, lam on the whole
    backbone."""
    from olor_mm import layerwise_rollback_groups
    torch.manual_seed(0)
    model = ToyClassifier()
    opt = torch.optim.SGD(
        layerwise_rollback_groups(
            model, ('backbone', ), rollback_max=lam, rollback_min=lam),
        lr=0.1,
        momentum=momentum)
    return model, opt


def nan_hook(name, target):
    """Register (as ``name``) a hook that fills ``target`` (a dotted
    attribute path of the model) with NaN after iteration 4; returns its
    config."""

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


class ProbeNet(nn.Module):
    """The fourth probe's model: a backbone with a free gain vector."""

    def __init__(self, gain=1.0):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6))
        self.backbone.gain = nn.Parameter(torch.full((2, ), gain))
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x)) * self.backbone.gain.sum()


def probe_setup(model, **kwargs):
    """SGD over per-tensor groups of ``model.backbone``, rolled back."""
    from olor_mm import attach_rollback, layerwise_rollback_groups
    groups = layerwise_rollback_groups(
        model, ('backbone', ), rollback_max=0.3, layer_unit='param')
    opt = torch.optim.SGD(groups, lr=0.1)
    return opt, attach_rollback(opt, setup=groups.setup, **kwargs)


def probe_step(model, opt):
    opt.zero_grad()
    model(torch.randn(3, 4)).sum().backward()
    opt.step()


def adamw_checkpoints(tmp_path):
    """A toy run with :func:`adamw_wrapper_cfg` from the toy 'pretrained'
    checkpoint, saved at iterations 3 and 6; returns (work dir, pretrained
    state dict)."""
    path, pretrained = pretrained_checkpoint(tmp_path)
    work = tmp_path / 'run'
    toy_runner(work, adamw_wrapper_cfg(), load_from=path).train()
    return work, pretrained


def frozen_toy():
    """A ToyClassifier with every parameter frozen."""
    model = ToyClassifier()
    model.requires_grad_(False)
    return model


def plain_toy_groups(**kwargs):
    """``layerwise_rollback_groups`` of a fresh ToyClassifier with the
    function's own defaults (unlike :func:`toy_groups`)."""
    from olor_mm import layerwise_rollback_groups
    return layerwise_rollback_groups(ToyClassifier(), **kwargs)


#: the upstream data of the toy runs (ToyDataset of another seed)
FISHER_DATA = dict(
    dataset=dict(type='ToyDataset', seed=5),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    batch_size=4,
    num_workers=0)


def fisher_by_hand(pretrained) -> dict:
    """{name: F} of the pretrained ToyClassifier's backbone on FISHER_DATA
    (batches 0-2 of ToyDataset(seed 5), each a cross-entropy gradient
    squared, averaged), unnormalised: written out, not olor_mm's code."""
    model = ToyClassifier()
    model.load_state_dict(pretrained)
    model.train()
    data = ToyDataset(seed=5)
    params = {
        n: p
        for n, p in model.named_parameters() if n.startswith('backbone')
    }
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for k in range(3):
        x, y = data.x[4 * k:4 * k + 4], data.y[4 * k:4 * k + 4]
        loss = nn.functional.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, list(params.values()))
        for n, g in zip(params, grads):
            total[n] += g * g / 3
    return total
