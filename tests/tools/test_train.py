"""olor_mm/tools/train.py: --resume with nothing to resume yet starts from
load_from (the never-silent probe)."""
import torch
from e2e_utils import state, toy_config_file, train_tool
from toy import ToyClassifier

from olor_mm.core.theta0 import saved_theta0


def test_resume_with_nothing_to_resume_keeps_load_from(tmp_path):
    """A requeue script's first launch: --resume in an empty work dir. The
    run starts from load_from (theta0 = the pretrained weights), not from
    the random initialisation MMDetection's script leaves."""
    config, pretrained = toy_config_file(tmp_path)
    out = train_tool(config, tmp_path / 'run', '--resume')
    assert 'nothing to resume' in out.stdout
    ckpt = state(tmp_path / 'run' / 'iter_6.pth')
    theta0 = saved_theta0(ckpt['optimizer']).values()
    backbone = [
        pretrained[n] for n, _ in ToyClassifier().named_parameters()
        if n.startswith('backbone.')
    ]
    # every backbone tensor but the deepest layer's two (lam 0) is anchored
    assert len(theta0) == len(backbone) - 2
    for t in theta0:  # every theta0 tensor is a pretrained value
        assert any(torch.equal(t, v) for v in backbone)
    # the second launch resumes
    train_tool(config, tmp_path / 'run', '--resume')  # finished: nothing runs
    assert (tmp_path / 'run' /
            'last_checkpoint').read_text().endswith('iter_6.pth')
