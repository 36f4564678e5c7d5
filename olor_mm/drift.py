"""How far fine-tuning moved the pretrained weights, per layer group.

Relative drift of a group ``G`` of tensors::

    drift(G) = ||theta_G - theta0_G|| / ||theta0_G||

(Frobenius norms over all the group's tensors together). Groups follow the
architecture's stages: in a module with stage-numbered children (ResNet's
``layer{i}``, Swin's / ConvNeXt's ``stages.{i}`` with Swin's ``norm{i}``,
MiT's ``layers.{i}``) the parameters before the first stage form ``stem``,
each stage ``stage{i}`` and the parameters after the last stage ``top``;
a module without stages (a neck, a head) is one group. Names are
``<top-level module>.<group>``, e.g. ``backbone.stem``, ``backbone.stage1``,
``neck``.
"""
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, Tuple

import torch

#: children whose index is a stage number (regexes on names within the
#: top-level module); ViT's ``layers.{i}`` are blocks, grouped the same way
STAGE_PATTERNS = (r'^layer(\d+)\.', r'^stages\.(\d+)\.', r'^norm(\d+)\.',
                  r'^layers\.(\d+)\.', r'^downsample_layers\.(\d+)\.')


def _stage_of(name: str):
    for pattern in STAGE_PATTERNS:
        m = re.match(pattern, name)
        if m:
            return int(m.group(1))
    return None


def drift_groups(names: Iterable[str]) -> 'OrderedDict[str, List[str]]':
    """Group parameter names (in registration order) as the module says.

    Returns an ordered dict from group name to the names it holds.
    """
    by_top: 'OrderedDict[str, List[str]]' = OrderedDict()
    for name in names:
        top, _, rest = name.partition('.')
        by_top.setdefault(top, []).append(rest)
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for top, rests in by_top.items():
        stages = [_stage_of(r) for r in rests]
        if all(s is None for s in stages):
            groups[top] = [f'{top}.{r}' for r in rests]
            continue
        # MMDetection's ResNet counts stages from 1 (layer1), others from 0
        base = 1 if any(re.match(r'layer\d+\.', r) for r in rests) else 0
        seen_stage = False
        for rest, stage in zip(rests, stages):
            if stage is not None:
                seen_stage = True
                key = f'stage{stage + 1 - base}'
            else:
                key = 'top' if seen_stage else 'stem'
            groups.setdefault(f'{top}.{key}', []).append(f'{top}.{rest}')
    return groups


@torch.no_grad()
def relative_drift(params: Mapping[str, torch.Tensor],
                   theta0: Mapping[str, torch.Tensor],
                   groups: Mapping[str, List[str]]) -> Dict[str, float]:
    """``||theta_G - theta0_G|| / ||theta0_G||`` for every group ``G``.

    ``params`` and ``theta0`` map names to tensors (theta0 may be of a
    narrower dtype); one multi-tensor norm per group, accumulated in
    float64. A group whose theta0 is all zeros gets ``inf`` (or 0 if it did
    not move).
    """
    out = {}
    for group, names in groups.items():
        cur = [params[n] for n in names]
        ref = [theta0[n].to(cur[k].dtype) for k, n in enumerate(names)]
        diff = torch._foreach_sub(cur, ref)
        num = sum(float(x)**2 for x in torch._foreach_norm(diff))
        den = sum(float(x)**2 for x in torch._foreach_norm(ref))
        out[group] = (num /
                      den)**0.5 if den else (0.0 if num == 0 else float('inf'))
    return out


def state_dict_drift(state: Mapping[str, torch.Tensor],
                     theta0: Mapping[str, torch.Tensor],
                     prefixes: Tuple[str, ...] = ('backbone.', ),
                     whole: bool = True) -> Dict[str, float]:
    """Drift per group between two checkpoints' ``state_dict``s.

    Only floating parameters (not BN running statistics or counters) under
    ``prefixes``; with ``whole`` an extra entry per prefix holds the drift of
    all its tensors together (e.g. ``backbone``).
    """
    names = [
        k for k, v in theta0.items()
        if k.startswith(prefixes) and v.is_floating_point()
        and not k.rsplit('.', 1)[-1].startswith(('running_', 'num_batches'))
    ]
    out = relative_drift(state, theta0, drift_groups(names))
    if whole:
        for prefix in prefixes:
            sel = [n for n in names if n.startswith(prefix)]
            out.update(
                relative_drift(state, theta0, {prefix.rstrip('.'): sel}))
    return out
