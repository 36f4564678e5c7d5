"""How far fine-tuning moved the pretrained weights, per layer group.

Relative drift of a group ``G`` of tensors::

    drift(G) = ||theta_G - theta0_G|| / ||theta0_G||

(Frobenius norms over all the group's tensors together). Groups are the
stage-level view of the model's own layer numbering
(:func:`olor_mm.layers.numbering.stage_groups`): ``backbone.stem``,
``backbone.stage1`` ... , ``backbone.top``; a module without stages (a
neck, a head) is one group, e.g. ``neck``.
"""
from typing import Dict, List, Mapping, Tuple

import torch

from ..layers.numbering import stage_groups
from .norms import relative, relative_terms

#: drift groups of a model's parameter names: its numbering's stage view
drift_groups = stage_groups


@torch.no_grad()
def relative_drift(params: Mapping[str, torch.Tensor],
                   theta0: Mapping[str, torch.Tensor],
                   groups: Mapping[str, List[str]]) -> Dict[str, float]:
    """``||theta_G - theta0_G|| / ||theta0_G||`` for every group ``G``.

    ``params`` and ``theta0`` map names to tensors (theta0 may be of a
    narrower dtype); one multi-tensor norm per group, accumulated in
    float64. A group whose theta0 is all zeros gets ``inf`` (or 0 if it did
    not move): :func:`olor_mm.core.norms.relative`.
    """
    out = {}
    for group, names in groups.items():
        cur = [params[n] for n in names]
        ref = [theta0[n] for n in names]
        out[group] = relative(*(float(x) for x in relative_terms(cur, ref)))
    return out


def state_dict_drift(state: Mapping[str, torch.Tensor],
                     theta0: Mapping[str, torch.Tensor],
                     model,
                     prefixes: Tuple[str, ...] = ('backbone.', ),
                     whole: bool = True) -> Dict[str, float]:
    """Drift per group between two checkpoints' ``state_dict``s.

    The parameters of ``model`` (the model both checkpoints are of, which
    gives the groups) under ``prefixes``; with ``whole`` an extra entry per
    prefix holds the drift of all its tensors together (e.g. ``backbone``).
    """
    names = [
        k for k, _ in model.named_parameters()
        if k.startswith(prefixes) and k in theta0
    ]
    out = relative_drift(state, theta0, drift_groups(model, names))
    if whole:
        for prefix in prefixes:
            sel = [n for n in names if n.startswith(prefix)]
            out.update(
                relative_drift(state, theta0, {prefix.rstrip('.'): sel}))
    return out
