"""tools/model_converters/publish_model.py: a fine-tuned checkpoint, as
MMEngine writes it with OLOR's theta0 in the optimizer state, published:
smaller, without optimizer, theta0 or message hub, named with its sha256,
and loaded by MMDetection's ``init_detector`` / MMSegmentation's
``init_model`` with the same weights."""
import hashlib
import os.path as osp
import re

import pytest
import torch
from e2e_utils import ROOT, fine_tuned_checkpoint
from mmengine.config import Config

import olor_mm  # noqa: F401
from olor_mm.tools.publish_model import main  # noqa: E402

DEMO = osp.join(ROOT, 'configs', 'demo')


@pytest.mark.parametrize(
    'config, load', [
        ('mask-rcnn_r18-tiny_demo-downstream_olor.py',
         'mmdet.apis.init_detector'),
        ('upernet_r18-tiny_demo-downstream_olor.py', 'mmseg.apis.init_model'),
    ],
    ids=['mmdet', 'mmseg'])
def test_published_model_loads_with_the_same_weights(config, load, tmp_path,
                                                     capsys):
    cfg = Config.fromfile(osp.join(DEMO, config))
    ckpt = str(tmp_path / 'iter_6.pth')
    state = fine_tuned_checkpoint(cfg, ckpt)
    main([ckpt, str(tmp_path / 'demo_olor.pth')])
    out = capsys.readouterr().out
    (published, ) = tmp_path.glob('demo_olor_*-*.pth')
    date, sha = re.fullmatch(r'demo_olor_(\d{8})-([0-9a-f]{8})\.pth',
                             published.name).groups()
    assert hashlib.sha256(published.read_bytes()).hexdigest()[:8] == sha
    assert 'Key `optimizer` is removed' in out
    assert 'Key `message_hub` is removed' in out
    assert published.stat().st_size < 0.5 * osp.getsize(ckpt)
    assert f'-> {published}' in out and 'MiB' in out
    saved = torch.load(published, map_location='cpu', weights_only=True)
    assert set(saved) == {'meta', 'state_dict'}
    module, function = load.rsplit('.', 1)
    init = getattr(__import__(module, fromlist=[function]), function)
    model = init(cfg, str(published), device='cpu')
    loaded = model.state_dict()
    for name, value in state.items():
        assert torch.equal(loaded[name], value), name


def test_a_checkpoint_without_the_kept_keys_is_refused(tmp_path):
    path = tmp_path / 'x.pth'
    torch.save(dict(state_dict={}), path)
    with pytest.raises(SystemExit, match=r"has no \['meta'\]"):
        main([str(path), str(tmp_path / 'out.pth')])


def test_a_checkpoint_mmengine_wrote_publishes(tmp_path):
    """A checkpoint of a real OLOR run (MMEngine's Runner, theta0 in the
    optimizer state): published with the run's weights only."""
    from toy import TOY_LAYERS, olor_wrapper_cfg, toy_runner
    runner = toy_runner(
        tmp_path / 'run',
        olor_wrapper_cfg(
            dict(type='AdamW', lr=1e-3), layer_patterns=TOY_LAYERS),
        max_iters=3)
    runner.train()
    ckpt = tmp_path / 'run' / 'iter_3.pth'
    raw = olor_mm.compat.load_from_local_safe(str(ckpt), map_location='cpu')
    assert 'olor_rollback' in raw['optimizer']  # theta0 rides in it
    main([str(ckpt), str(tmp_path / 'toy.pth')])
    (published, ) = tmp_path.glob('toy_*-*.pth')
    saved = torch.load(published, map_location='cpu', weights_only=True)
    assert set(saved) == {'meta', 'state_dict'}
    assert published.stat().st_size < ckpt.stat().st_size
    weights = runner.model.state_dict()
    assert set(saved['state_dict']) == set(weights)
    for name, value in weights.items():
        assert torch.equal(saved['state_dict'][name], value), name
