"""olor_mm/tools/experiment.py (the demo's and the forgetting tool's
harness) loads checkpoints weights-only (the never-silent probe)."""

import os
import pickle

import pytest
import torch


class Planted:
    """What a planted checkpoint would run on unpickling."""

    def __reduce__(self):
        return (os.system, ('echo planted', ))


def test_the_harness_loads_checkpoints_weights_only(tmp_path):
    from olor_mm.tools.experiment import load
    planted = tmp_path / 'planted.pth'
    torch.save(dict(state_dict={}, x=Planted()), planted)
    with pytest.raises(pickle.UnpicklingError, match='posix.system|system'):
        load(str(planted))
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2))), good)
    assert torch.equal(load(str(good))['state_dict']['w'], torch.ones(2))
