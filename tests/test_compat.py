"""The narrow fixes of olor_mm.compat, each against the unfixed behaviour."""
import pytest
import torch
from mmcv.ops import RoIAlign, nms
from mmengine.runner.checkpoint import CheckpointLoader

import olor_mm  # noqa: F401  (applies the process-wide fixes)
from olor_mm.compat import (load_from_local_trusted,
                            run_mmcv_ops_in_fp32_under_cpu_autocast)

# applied when a CPU mixed-precision wrapper is built; here, directly
run_mmcv_ops_in_fp32_under_cpu_autocast()


def test_local_scheme_loads_mmengine_objects(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = str(tmp_path / 'ckpt.pth')
    log = HistoryBuffer()
    log.update(1.0)
    log.update(2.0)
    torch.save(dict(message_hub=dict(log=log)), path)
    with pytest.raises(Exception, match='HistoryBuffer|weights_only'):
        torch.load(path)  # torch >= 2.6 default
    assert CheckpointLoader._schemes[''] is load_from_local_trusted
    loaded = CheckpointLoader.load_checkpoint(path)
    assert loaded['message_hub']['log'].mean() == 1.5
    with pytest.raises(FileNotFoundError):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'missing.pth'))


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
    from olor_mm.compat import (apply_compat_fixes,
                                run_mmcv_ops_in_fp32_under_cpu_autocast)
    run_mmcv_ops_in_fp32_under_cpu_autocast()
    forward = NMSop.forward
    run_mmcv_ops_in_fp32_under_cpu_autocast()
    apply_compat_fixes()
    assert NMSop.forward is forward


def test_cpu_ddp_wrapper_gets_device_ids_none():
    from mmengine.config import Config

    from olor_mm.compat import cpu_ddp_model_wrapper_cfg
    cfg = Config(dict(launcher='pytorch', find_unused_parameters=True))
    cpu_ddp_model_wrapper_cfg(cfg)
    # MMEngine's own defaults, with device_ids=None (its default would be
    # [LOCAL_RANK], which DistributedDataParallel refuses for CPU modules)
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True, device_ids=None)
    cfg = Config(dict(launcher='pytorch', model_wrapper_cfg=dict(
        type='MMDistributedDataParallel', broadcast_buffers=True)))
    cpu_ddp_model_wrapper_cfg(cfg)
    assert cfg.model_wrapper_cfg.broadcast_buffers is True
    assert cfg.model_wrapper_cfg.device_ids is None
    cfg = Config(dict(launcher='none'))
    cpu_ddp_model_wrapper_cfg(cfg)
    assert 'model_wrapper_cfg' not in cfg


def test_init_dist_without_cuda_is_wrapped_once():
    import mmengine.dist.utils as dist_utils

    from olor_mm.compat import init_dist_pytorch_without_cuda
    patched = dist_utils._init_dist_pytorch
    assert patched._olor_cpu
    init_dist_pytorch_without_cuda()
    assert dist_utils._init_dist_pytorch is patched
    # the 2-process runs of tests/test_distributed.py exercise it
