"""Data-parallel training on the CPU: 2 gloo processes, tools/dist_train.sh
(and tools/slurm_train.sh).

Each run goes through torchrun and tools/train.py (--launcher pytorch), as
on a GPU cluster; ``dist_probe.DumpReplicaHook`` writes every rank's
weights and theta0 after training.
"""
import os.path as osp

import dist_probe  # noqa: F401  (registers DumpReplicaHook here too)
import pytest
import torch
from dist_utils import dist_train, slurm_train
from e2e_utils import DEMO, options
from mmengine.config import Config
from mmengine.runner import Runner
from toy import TOY_LAYERS, olor_wrapper_cfg, pretrained_checkpoint, runner_cfg

import olor_mm  # noqa: F401

IMPORTS = dict(
    imports=['olor_mm', 'toy', 'dist_probe'], allow_failed_imports=False)


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _pretrained(tmp_path):
    return pretrained_checkpoint(tmp_path, norm=False)


def _toy_cfg(work_dir, batch_size, load_from):
    cfg = runner_cfg(
        work_dir,
        olor_wrapper_cfg(
            dict(type='SGD', lr=0.05, momentum=0.9),
            rollback_max=0.1,
            layer_patterns=TOY_LAYERS),
        max_iters=4,
        load_from=load_from,
        model=dict(type='ToyClassifier', norm=False),
        custom_imports=IMPORTS,
        custom_hooks=[dict(type='DumpReplicaHook')])
    cfg['train_dataloader']['batch_size'] = batch_size
    return cfg


def test_two_gloo_processes_match_one_process_with_the_global_batch(tmp_path):
    path, pretrained = _pretrained(tmp_path)
    # 2 ranks x 4 images: DefaultSampler gives rank r the images r, r+2, ...
    # so each step's global batch is the 1-process run's batch of 8.
    config = tmp_path / 'toy_ddp.py'
    Config(_toy_cfg(tmp_path / 'ddp', 4, path)).dump(str(config))
    rank0, rank1 = dist_train(config, tmp_path / 'ddp', 2)
    assert rank0['world_size'] == 2
    _assert_identical(rank0['params'], rank1['params'])
    _assert_identical(rank0['theta0'], rank1['theta0'])
    assert rank0['theta0'] and all(
        torch.equal(t, pretrained[n]) for n, t in rank0['theta0'].items())

    single = Runner.from_cfg(_toy_cfg(tmp_path / 'single', 8, path))
    single.train()
    one = torch.load(
        tmp_path / 'single' / 'replica_rank0.pth', weights_only=False)
    _assert_identical(rank0['theta0'], one['theta0'])
    moved = max(
        float((one['params'][n] - pretrained[n]).abs().max())
        for n in pretrained)
    assert moved > 1e-2  # the runs trained
    # DDP averages the two ranks' mean gradients: the 8-image mean up to
    # float rounding (summation order)
    for n, p in one['params'].items():
        torch.testing.assert_close(
            rank0['params'][n], p, rtol=1e-5, atol=1e-6, msg=n)


def test_slurm_train_sh_on_nodes_without_gpu(tmp_path):
    """tools/slurm_train.sh with ``--launcher slurm`` on CPU processes (a
    stand-in srun starts the tasks with Slurm's variables): MMEngine's
    init_dist('slurm') starts them on gloo with olor-mm's fix, the
    replicas and theta0 agree, and an argument with spaces and brackets
    reaches train.py as one."""
    path, pretrained = _pretrained(tmp_path)
    config = tmp_path / 'toy_slurm.py'
    Config(_toy_cfg(tmp_path / 'slurm', 4, path)).dump(str(config))
    (rank0, rank1), srun = slurm_train(
        config,
        tmp_path / 'slurm',
        2,
        '--cfg-options',
        "run_note=[('a', (0, )), 'b']",  # as the README's layer_patterns
        tmp=tmp_path)
    assert '--gres' not in srun and '--ntasks=2' in srun
    assert rank0['world_size'] == 2
    _assert_identical(rank0['params'], rank1['params'])
    _assert_identical(rank0['theta0'], rank1['theta0'])
    assert rank0['theta0'] and all(
        torch.equal(t, pretrained[n]) for n, t in rank0['theta0'].items())
    dumped = Config.fromfile(str(tmp_path / 'slurm' / 'toy_slurm.py'))
    assert dumped.run_note == [('a', (0, )), 'b']


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    from olor_mm_tools.demo_data import make_instance_sets
    out = tmp_path_factory.mktemp('data')
    return make_instance_sets(str(out), img_size=128, num_train=8, num_val=2)


def test_olor_mask_rcnn_replicas_stay_identical(demo_data, tmp_path):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    config = osp.join(DEMO, 'mask-rcnn_r18-tiny_demo-downstream_olor.py')
    # a "pretrained" checkpoint: a seeded init of the same detector
    init_default_scope('mmdet')
    torch.manual_seed(7)
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    ckpt = str(tmp_path / 'pretrained.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)

    probe = tmp_path / 'olor_probe.py'
    probe.write_text(f'_base_ = {config!r}\n'
                     f'custom_imports = {IMPORTS!r}\n'
                     "custom_hooks = [dict(type='DumpReplicaHook')]\n")
    replicas = dist_train(probe, tmp_path / 'ddp', 2, '--cfg-options',
                          *options(demo_data['downstream'], 3),
                          f'load_from={ckpt}')
    rank0, rank1 = replicas
    _assert_identical(rank0['params'], rank1['params'])
    _assert_identical(rank0['theta0'], rank1['theta0'])
    state = model.state_dict()
    assert len(rank0['theta0']) > 50
    for n, t in rank0['theta0'].items():
        assert torch.equal(t, state[n]), n
    moved = [
        n for n, p in rank0['params'].items()
        if n.startswith('backbone.') and not torch.equal(p, state[n])
    ]
    assert moved  # the replicas trained (and stayed equal)


def _fsdp_cfg(work_dir, max_iters, pretrained, **kwargs):
    # FSDPStrategy's (default) local state dict loads only its own sharded
    # checkpoints: the pretrained weights come through init_cfg, as the
    # upstream configs' ImageNet backbones do
    cfg = _toy_cfg(work_dir, 4, None)
    cfg.update(
        max_iters=max_iters,
        runner_type='FlexibleRunner',
        model=dict(
            type='ToyClassifier',
            norm=False,
            init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
        # theta0 is taken from the sharded parameters: use_orig_params
        strategy=dict(
            type='FSDPStrategy',
            model_wrapper=dict(use_orig_params=True, device_id='cpu')),
        custom_hooks=[
            dict(type='DumpReplicaHook'),
            dict(type='RollbackDriftHook', interval=1)
        ],
        # FlexibleRunner.from_cfg needs it (MMDetection's runtime has it)
        env_cfg=dict(dist_cfg=dict(backend='nccl')),
        **kwargs)
    cfg['train_cfg']['max_iters'] = max_iters
    cfg['default_hooks']['checkpoint']['interval'] = 2
    return cfg


def test_fsdp_shards_theta0_like_the_parameters_and_resumes(tmp_path):
    path, pretrained = _pretrained(tmp_path)
    runs = {}
    for name, work, iters, extra in (('straight', 'a', 4, {}), ('first', 'b',
                                                                2, {}),
                                     ('resumed', 'b', 4,
                                      dict(
                                          resume=True,
                                          load_from=str(tmp_path / 'b' /
                                                        'iter_2.pth')))):
        config = tmp_path / f'fsdp_{name}.py'
        Config(_fsdp_cfg(tmp_path / work, iters, path,
                         **extra)).dump(str(config))
        runs[name] = dist_train(config, tmp_path / work, 2)
    straight, resumed = runs['straight'], runs['resumed']
    for rank in (0, 1):
        # FSDP (use_orig_params) gives each rank a flat slice of every
        # tensor; theta0 is sliced the same way ...
        for n, t in straight[rank]['theta0'].items():
            assert t.shape == straight[rank]['params'][n].shape, n
        # ... and resuming restores it and continues bit for bit
        _assert_identical(straight[rank]['theta0'], resumed[rank]['theta0'])
        _assert_identical(straight[rank]['params'], resumed[rank]['params'])
    shards = [straight[r]['theta0'] for r in (0, 1)]
    assert any(s.numel() == 0 for s in shards[0].values())  # truly sharded
    for n in shards[0]:
        torch.testing.assert_close(
            torch.cat([shards[0][n], shards[1][n]]),
            pretrained[n].flatten(),
            rtol=0,
            atol=0,
            msg=n)
    # the drift hook reduces its norms over the shards: both ranks log the
    # drift of the whole tensors
    params = {
        n: torch.cat([straight[r]['params'][n] for r in (0, 1)])
        for n in straight[0]['params']
    }
    stem = ['backbone.conv1.weight']  # norm=False: the stem is one conv
    expect = (sum(
        float((params[n] - pretrained[n].flatten()).pow(2).sum())
        for n in stem) / sum(float(pretrained[n].pow(2).sum())
                             for n in stem))**0.5
    for rank in (0, 1):
        assert straight[rank]['drift']['backbone.stem'] == pytest.approx(
            expect, rel=1e-6)


def test_fsdp_full_state_dict_with_theta0_is_refused(tmp_path):
    path, _ = _pretrained(tmp_path)
    cfg = _fsdp_cfg(tmp_path / 'full', 2, path)
    cfg['strategy']['state_dict_cfg'] = 'full'
    config = tmp_path / 'fsdp_full.py'
    Config(cfg).dump(str(config))
    log = dist_train(config, tmp_path / 'full', 2, expect_ok=False)
    assert "strategy.state_dict_cfg='local'" in log


def test_unused_parameters_on_one_rank_keep_the_replicas_identical(tmp_path):
    """Rank 0's forward skips backbone.layer2 (find_unused_parameters):
    DDP still hands it the other rank's averaged gradient, so both ranks
    roll the same tensors back and stay bit-identical."""
    path, pretrained = _pretrained(tmp_path)
    cfg = _toy_cfg(tmp_path / 'uneven', 4, path)
    cfg['model'] = dict(type='ToyUnevenClassifier', norm=False)
    cfg['find_unused_parameters'] = True
    config = tmp_path / 'toy_uneven.py'
    Config(cfg).dump(str(config))
    rank0, rank1 = dist_train(config, tmp_path / 'uneven', 2)
    _assert_identical(rank0['params'], rank1['params'])
    _assert_identical(rank0['theta0'], rank1['theta0'])
    layer2 = [n for n in rank0['theta0'] if n.startswith('backbone.layer2')]
    assert layer2  # rolled back, and moved on both ranks
    assert any(not torch.equal(rank0['params'][n], pretrained[n])
               for n in layer2)


def test_fsdp_saves_complete_every_time_and_stale_parts_break_nothing(
        tmp_path):
    """Thirty FSDP saves in three consecutive two-process runs, each
    resuming the last and saving at every iteration (max_keep_ckpts=1),
    through olor-mm's tools/train.py: every rank's part is written before
    rank 0 renames it (before, rank 0 renamed while rank 1 still wrote:
    incomplete checkpoints, IsADirectoryError); a stale .part folder and
    file left in the work dir are removed at the first save."""
    import zipfile
    path, _ = _pretrained(tmp_path)
    work = tmp_path / 'fsdp'
    (work / 'iter_3.pth.part').mkdir(parents=True)
    (work / 'iter_3.pth.part' / 'rank0.pth').write_text('killed')
    (work / 'iter_9.pth.part').write_text('killed')
    for k in range(1, 4):
        n = 10 * k
        cfg = _fsdp_cfg(work, n, path)
        cfg['default_hooks']['checkpoint'].update(interval=1, max_keep_ckpts=1)
        config = tmp_path / f'fsdp_{k}.py'
        Config(cfg).dump(str(config))
        dist_train(config, work, 2, '--resume')
        assert not list(work.glob('*.part')), k
        last = (work / 'last_checkpoint').read_text().strip()
        assert last == str(work / f'iter_{n}.pth'), k
        ranks = sorted(p.name for p in (work / f'iter_{n}.pth').iterdir())
        assert ranks == ['rank0.pth', 'rank1.pth'], k
        assert all(
            zipfile.is_zipfile(work / f'iter_{n}.pth' / r) for r in ranks), k
        assert sorted(p.name
                      for p in work.glob('iter_*')) == [f'iter_{n}.pth'], k
