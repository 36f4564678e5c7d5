"""The narrow fixes of olor_mm.compat: each against the unfixed behaviour,
each gated on the bug being there, and the switch that turns them off;
an FSDP resume at another world size named (third probe)."""
import pickle
import subprocess
import sys

import pytest
import torch
from mmcv.ops import RoIAlign, nms
from mmengine.runner.checkpoint import CheckpointLoader
from paths import ROOT

import olor_mm  # noqa: F401
from olor_mm import compat
from olor_mm.compat import (load_from_local_safe,
                            run_mmcv_ops_in_fp32_under_cpu_autocast)
from olor_mm.core.theta0 import saved_theta0

# applied when a CPU mixed-precision wrapper is built; here, directly
run_mmcv_ops_in_fp32_under_cpu_autocast()


class Foreign:
    """A class no allow-list knows."""


class SneakyGetattr:
    """Pickles as getattr(HistoryBuffer, '__class__'): not a statistic."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return getattr, (HistoryBuffer, '__class__')


def test_local_scheme_loads_mmengine_objects_weights_only(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = str(tmp_path / 'ckpt.pth')
    log = HistoryBuffer()
    log.update(1.0)
    log.update(2.0)
    import numpy as np
    torch.save(
        dict(
            message_hub=dict(
                log=log,
                eta=np.float64(3.5),
                counts=np.arange(3, dtype=np.int32))), path)
    with pytest.raises(Exception, match='HistoryBuffer|weights_only'):
        torch.load(path)  # torch >= 2.6 default
    # MMEngine's name and signature: what looks the loader up still finds it
    loader = CheckpointLoader._schemes['']
    assert loader is olor_mm.compat.checkpoint.load_from_local
    assert loader.__name__ == 'load_from_local'
    loaded = CheckpointLoader.load_checkpoint(path)
    assert loaded['message_hub']['log'].mean() == 1.5
    assert loaded['message_hub']['eta'] == 3.5
    with pytest.raises(FileNotFoundError):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'missing.pth'))
    # nothing was allowed process-wide: torch's own load still refuses
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_a_foreign_global_is_refused_naming_it_and_the_fix(tmp_path):
    path = str(tmp_path / 'foreign.pth')
    torch.save(dict(state_dict={}, meta=dict(obj=Foreign())), path)
    with pytest.raises(
            pickle.UnpicklingError,
            match=f'{path} holds the global '
            'test_compat.Foreign.*add_safe_globals'):
        CheckpointLoader.load_checkpoint(path)
    torch.save(dict(x=SneakyGetattr()), path)
    with pytest.raises(pickle.UnpicklingError, match='getattr'):
        CheckpointLoader.load_checkpoint(path)
    # allowed by the user, it loads (and is still weights-only otherwise)
    with torch.serialization.safe_globals([Foreign]):
        torch.save(dict(meta=dict(obj=Foreign())), path)
        assert isinstance(
            CheckpointLoader.load_checkpoint(path)['meta']['obj'], Foreign)


def test_each_fix_finds_its_bug_on_this_stack():
    # mmengine 0.10.7 + torch 2.13 + mmcv 2.1.0 have all three bugs; the
    # ones applied at import are fixed now, so their detectors say so
    from olor_mm.compat import checkpoint, dist, mmcv_ops
    assert checkpoint._torch_loads_weights_only_by_default()
    import inspect

    from mmengine.runner import checkpoint as mm_checkpoint
    assert 'weights_only' not in inspect.getsource(
        mm_checkpoint.load_from_local)
    assert dist.has_bug() is False  # wrapped at import
    assert mmcv_ops.has_bug() is False  # wrapped above


def test_fsdp_resume_is_applied_keeping_mmengines_name():
    """MMEngine 0.10.7 passes the state dict first, torch 2.13 takes the
    model first: applied at import (the 2-process FSDP resume of
    tests/e2e/test_distributed.py is what it repairs), under MMEngine's
    name."""
    import inspect

    from mmengine._strategy.fsdp import FSDP, FSDPStrategy

    from olor_mm.compat import fsdp_resume
    assert 'fsdp_resume' in compat.APPLIED
    assert next(
        iter(inspect.signature(
            FSDP.optim_state_dict_to_load).parameters)) == 'model'
    method = FSDPStrategy.load_optim_state_dict
    assert method._olor and method.__name__ == 'load_optim_state_dict'
    assert method.__qualname__ == 'FSDPStrategy.load_optim_state_dict'
    assert fsdp_resume.has_bug() is False  # fixed: not applied twice


@pytest.mark.parametrize('name', sorted(compat.FIXES))
def test_a_fix_is_skipped_where_the_bug_is_absent(name, monkeypatch):
    """With has_bug() False nothing is patched (apply returns False)."""
    fix = compat.FIXES[name]
    monkeypatch.setattr(fix, 'has_bug', lambda: False)
    calls = []
    monkeypatch.setattr(CheckpointLoader, 'register_scheme',
                        lambda *a, **k: calls.append(a))
    import mmengine.dist.utils as dist_utils
    before = dist_utils._init_dist_pytorch
    assert compat.apply_fix(name) is False
    assert not calls and dist_utils._init_dist_pytorch is before


def test_checkpoint_bug_is_absent_before_torch_2_6(monkeypatch):
    from olor_mm.compat import checkpoint
    monkeypatch.setattr(torch, '__version__', '2.5.1+cpu')
    assert checkpoint.has_bug() is False
    monkeypatch.setattr(torch, '__version__', '2.6.0')
    assert checkpoint.has_bug() is True


@pytest.mark.parametrize('value, applied', [
    (None, ['checkpoint', 'config_bases', 'dist', 'fsdp_resume', 'mmcv_ops']),
    ('all', ['checkpoint', 'config_bases', 'dist', 'fsdp_resume', 'mmcv_ops']),
    ('0', []), ('off', []), ('none', []), ('dist', ['dist']),
    ('checkpoint, mmcv_ops', ['checkpoint', 'mmcv_ops'])
])
def test_the_environment_variable_chooses_the_fixes(value, applied,
                                                    monkeypatch):
    if value is None:
        monkeypatch.delenv('OLOR_MM_COMPAT', raising=False)
    else:
        monkeypatch.setenv('OLOR_MM_COMPAT', value)
    assert [n for n in sorted(compat.FIXES) if compat.enabled(n)] == applied


def test_an_unknown_fix_name_is_refused(monkeypatch):
    monkeypatch.setenv('OLOR_MM_COMPAT', 'checkpoint,pkg_resources')
    with pytest.raises(ValueError, match="OLOR_MM_COMPAT.*pkg_resources"):
        compat.enabled('checkpoint')


def test_switched_off_nothing_is_patched():
    code = ('import olor_mm, mmengine.dist.utils as d; '
            'from mmengine.runner.checkpoint import CheckpointLoader as C; '
            'print(C._schemes[""].__module__, '
            'getattr(d._init_dist_pytorch, "_olor_cpu", False))')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         env=dict(
                             __import__('os').environ, OLOR_MM_COMPAT='0'))
    assert out.returncode == 0, out.stderr
    # (the last line: importing mmengine.runner imports DeepSpeed where it
    # is installed, which prints its accelerator)
    assert out.stdout.splitlines()[-1].split() == [
        'mmengine.runner.checkpoint', 'False'
    ]


def _boxes():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 100
    wh = torch.rand(50, 2, generator=g) * 40 + 5
    return torch.cat([xy, xy + wh], 1), torch.rand(50, generator=g)


def test_nms_under_cpu_autocast_equals_fp32():
    boxes, scores = _boxes()
    dets, keep = nms(boxes, scores, 0.5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        dets_amp, keep_amp = nms(boxes.bfloat16(), scores.bfloat16(), 0.5)
    # the kernel ran in float32 on the bfloat16 inputs: it keeps exactly
    # what float32 NMS keeps on those (rounded) boxes
    b16, s16 = boxes.bfloat16().float(), scores.bfloat16().float()
    ref_dets, ref_keep = nms(b16, s16, 0.5)
    assert torch.equal(keep_amp, ref_keep)
    assert torch.equal(dets_amp.float(), ref_dets)
    assert 0 < keep.numel() < 50


def test_roi_align_forward_and_backward_under_cpu_autocast():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(1, 4, 16, 16, generator=g, requires_grad=True)
    rois = torch.tensor([[0, 1.0, 1.0, 9.0, 9.0], [0, 4.0, 2.0, 15.0, 12.0]])
    op = RoIAlign((4, 4), spatial_scale=1.0, sampling_ratio=2)
    ref = op(feat, rois)
    ref.sum().backward()
    ref_grad = feat.grad.clone()
    feat.grad = None
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = op(feat.bfloat16(), rois)
    assert out.dtype == torch.bfloat16  # as a bfloat16 kernel would give
    out.float().sum().backward()
    assert feat.grad.dtype == torch.float32
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.02)
    torch.testing.assert_close(feat.grad, ref_grad, atol=1e-2, rtol=1e-2)


def test_fixes_are_idempotent():
    from mmcv.ops.nms import NMSop

    from olor_mm.compat import apply_compat_fixes
    forward = NMSop.forward
    assert run_mmcv_ops_in_fp32_under_cpu_autocast() is False  # done
    # the checkpoint loader is registered again (MMEngine's registry takes
    # the same function), the others see their own fix and skip
    assert apply_compat_fixes() == dict(
        checkpoint=True, config_bases=False, dist=False, fsdp_resume=False)
    assert NMSop.forward is forward


def test_cpu_ddp_wrapper_gets_device_ids_none():
    from mmengine.config import Config

    from olor_mm.compat import cpu_ddp_model_wrapper_cfg
    cfg = Config(dict(launcher='pytorch', find_unused_parameters=True))
    cpu_ddp_model_wrapper_cfg(cfg)
    # MMEngine's own defaults, with device_ids=None (its default would be
    # [LOCAL_RANK], which DistributedDataParallel refuses for CPU modules)
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=True,
        device_ids=None)
    cfg = Config(
        dict(
            launcher='pytorch',
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel', broadcast_buffers=True)))
    cpu_ddp_model_wrapper_cfg(cfg)
    assert cfg.model_wrapper_cfg.broadcast_buffers is True
    assert cfg.model_wrapper_cfg.device_ids is None
    cfg = Config(dict(launcher='none'))
    cpu_ddp_model_wrapper_cfg(cfg)
    assert 'model_wrapper_cfg' not in cfg


def test_init_dist_without_cuda_is_wrapped_once():
    import mmengine.dist.utils as dist_utils

    from olor_mm.compat import dist
    patched = dist_utils._init_dist_pytorch
    # applying again changes nothing (the import applied it once)
    assert dist.apply() is False
    assert dist_utils._init_dist_pytorch is patched
    # the 2-process runs of tests/e2e/test_distributed.py exercise it


@pytest.fixture(scope='module')
def python_without_pkg_resources(tmp_path_factory):
    """A venv whose packages are this one's less setuptools: no
    pkg_resources, as in a fresh venv where torch 2.13 brings setuptools
    >= 81. The packages are linked, not installed (seconds, no network)."""
    import os
    import site
    import venv
    root = tmp_path_factory.mktemp('fresh')
    venv.EnvBuilder(with_pip=False).create(root / 'venv')
    stack = root / 'site'
    stack.mkdir()
    (packages, ) = [p for p in site.getsitepackages() if 'site-packages' in p]
    hidden = ('pkg_resources', 'setuptools', '_distutils_hack',
              'distutils-precedence.pth')
    for name in os.listdir(packages):
        if not name.startswith(hidden):
            os.symlink(os.path.join(packages, name), stack / name)
    (inner, ) = (root / 'venv').glob('lib/python*/site-packages')
    (inner /
     'stack.pth').write_text(f'import site; site.addsitedir({str(stack)!r})\n')
    python = str(root / 'venv' / 'bin' / 'python')
    check = subprocess.run([python, '-c', 'import pkg_resources'],
                           capture_output=True,
                           text=True)
    assert "No module named 'pkg_resources'" in check.stderr
    return python


def _run(python, code, cwd):
    """``python -c code`` in a folder of its own, so that olor_mm is the
    environment's (the editable install, or the matrix job's wheel)."""
    return subprocess.run([python, '-c', code],
                          cwd=str(cwd),
                          capture_output=True,
                          text=True,
                          timeout=300)


def test_upstream_and_olor_bases_load_without_pkg_resources(
        python_without_pkg_resources, tmp_path):
    """What fails in a fresh venv without the fix (MMEngine's own
    resolution of ``mmdet::``), and loads once olor_mm is imported: an
    mmdet config, an mmseg config (where mmseg is installed), an
    ``olor_mm::`` base and MMEngine's hub."""
    import importlib.util
    import os.path as osp
    configs = osp.join(ROOT, 'configs')
    det_path = osp.join(configs, 'mmdet', 'mask-rcnn_r50_fpn_olor_1x_coco.py')
    seg_path = osp.join(configs, 'mmseg',
                        'upernet_r50_olor_4xb4-80k_ade20k-512x512.py')
    (tmp_path / 'mine.py').write_text("_base_ = ['olor_mm::_base_/olor.py']\n")
    python = python_without_pkg_resources
    bare = _run(
        python, 'from mmengine.config import Config\n'
        f'Config.fromfile({det_path!r})\n', tmp_path)
    assert bare.returncode != 0
    assert "No module named 'pkg_resources'" in bare.stderr
    with_seg = importlib.util.find_spec('mmseg') is not None
    fixed = _run(
        python, 'import olor_mm\n'
        'from mmengine.config import Config\n'
        'from mmengine.hub import get_config\n'
        f'det = Config.fromfile({det_path!r})\n'
        "mine = Config.fromfile('mine.py')\n"
        "hub = get_config('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py')\n"
        'print(det.model.type, det.optim_wrapper.constructor,\n'
        '      mine.olor_optim_wrapper.constructor, hub.model.type)\n' +
        (f'print(Config.fromfile({seg_path!r}).model.type)\n'
         if with_seg else ''), tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    lines = fixed.stdout.splitlines()
    if with_seg:
        assert lines[-1] == 'EncoderDecoder'
        lines.pop()
    assert lines[-1].split() == [
        'MaskRCNN', 'LayerwiseRollbackConstructor',
        'LayerwiseRollbackConstructor', 'RetinaNet'
    ]
    assert "pip install 'setuptools<81'" in fixed.stdout + fixed.stderr


def test_tools_train_trains_a_shipped_config_without_pkg_resources(
        python_without_pkg_resources, tmp_path):
    """olor-mm's tools/train.py in that venv: the demo's OLOR fine-tuning
    config (``mmdet::`` bases) trains two iterations and rolls back."""
    import os.path as osp

    from e2e_utils import DEMO, ROOT, options

    from olor_mm_tools.demo_data import make_instance_sets
    data = make_instance_sets(
        str(tmp_path / 'data'), img_size=128, num_train=4, num_val=2)
    work = tmp_path / 'work'
    out = subprocess.run(
        [
            python_without_pkg_resources,
            osp.join(ROOT, 'tools', 'train.py'),
            osp.join(DEMO, 'mask-rcnn_r18-tiny_demo-downstream_olor.py'),
            '--work-dir',
            str(work),
            '--cfg-options',
            *options(data['downstream'], 2),
            'load_from=None'  # the demo's pre-training is not run here
        ],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "No module named 'pkg_resources'" not in out.stderr
    ckpt = load_from_local_safe(str(work / 'iter_2.pth'), map_location='cpu')
    assert saved_theta0(ckpt['optimizer'])  # theta0 rode along


def test_an_fsdp_resume_at_another_world_size_is_named():
    """torch's reason (``Local world size at save time was 2``) came last,
    after "damaged or incomplete (a run killed while saving it?)"."""
    from olor_mm.compat.checkpoint import damaged
    err = damaged(
        'epoch_1.pth',
        RuntimeError('Local world size at save time was 2, but at load '
                     'time was 1'))
    text = str(err)
    assert 'damaged' not in text
    assert 'world size 2' in text and 'world size 1' in text
    assert 'same number of processes' in text


def _compat(value, monkeypatch):
    monkeypatch.setenv('OLOR_MM_COMPAT', value)
    from olor_mm import compat
    compat.enabled('checkpoint')


def test_unknown_compat_switch_names_the_variable(monkeypatch):
    with pytest.raises(
            ValueError, match=r"OLOR_MM_COMPAT='x'.*use all, "
            'none'):
        _compat('x', monkeypatch)
