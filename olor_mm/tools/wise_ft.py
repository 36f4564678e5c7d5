"""WiSE-FT: interpolate a fine-tuned checkpoint toward the pretrained one.

Weight-space ensembling (Wortsman et al., "Robust fine-tuning of zero-shot
models", CVPR 2022) fine-tunes plainly, then mixes the weights, at no
training cost::

    theta = (1 - alpha) * theta0 + alpha * theta_ft

on every floating tensor the two checkpoints share (same name and shape:
the pretrained ones); the tensors only the fine-tuned model has (its new,
class-specific layers) and integer buffers keep their fine-tuned values.
``alpha = 0`` is the pretrained weights on the shared layers, ``alpha = 1``
the fine-tuned model. The output is a checkpoint ``tools/test.py``
evaluates.

Example::

    python tools/wise_ft.py pretrained.pth work_dirs/ft/iter_1000.pth \\
        --alpha 0.5 --out work_dirs/ft/wise_0.5.pth
"""
import argparse
import math
import os
import os.path as osp
from typing import Dict, Tuple

import torch


def state_dict_of(checkpoint) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint (MMEngine's ``state_dict`` or bare)."""
    return checkpoint.get('state_dict', checkpoint)


def interpolate(pretrained: Dict[str, torch.Tensor],
                finetuned: Dict[str, torch.Tensor],
                alpha: float) -> Tuple[Dict[str, torch.Tensor], int, int]:
    """``(1 - alpha) * pretrained + alpha * finetuned`` where both have it.

    Returns:
        tuple: the interpolated state dict, the number of tensors mixed and
        the number kept from ``finetuned``.

    Raises:
        ValueError: for ``alpha`` outside [0, 1] or not a number, or when
            the checkpoints share no tensor.
    """
    if (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
            or not math.isfinite(alpha) or not 0 <= alpha <= 1):
        raise ValueError(f'--alpha {alpha!r} must be in [0, 1] (0: the '
                         'pretrained weights, 1: the fine-tuned ones).')
    out, mixed, kept = {}, 0, 0
    for name, value in finetuned.items():
        ref = pretrained.get(name)
        if (ref is not None and ref.shape == value.shape
                and value.is_floating_point()):
            # lerp: exactly ref at 0, exactly value at 1
            out[name] = torch.lerp(ref.to(value.dtype), value, float(alpha))
            mixed += 1
        else:
            out[name] = value.clone()
            kept += 1
    if mixed == 0:
        raise ValueError(
            'the two checkpoints share no tensor (same name and shape): is '
            'the first the pretrained model the second was fine-tuned from?')
    return out, mixed, kept


def _load(path: str):
    from mmengine.runner.checkpoint import CheckpointLoader

    import olor_mm  # noqa: F401  (MMEngine's checkpoints, weights-only)
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')


def wise_ft(pretrained: str, finetuned: str, alpha: float,
            out: str) -> Dict[str, int]:
    """Write the interpolated checkpoint; returns its counts."""
    state, mixed, kept = interpolate(
        state_dict_of(_load(pretrained)), state_dict_of(_load(finetuned)),
        alpha)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(
        dict(
            state_dict=state,
            meta=dict(
                wise_ft=dict(
                    alpha=float(alpha),
                    pretrained=pretrained,
                    finetuned=finetuned))), out)
    return dict(mixed=mixed, kept=kept)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('pretrained', help='the pretrained checkpoint')
    parser.add_argument('finetuned', help='the fine-tuned checkpoint')
    parser.add_argument(
        '--alpha',
        type=float,
        required=True,
        help='0: pretrained, 1: fine-tuned')
    parser.add_argument(
        '--out', required=True, help='the checkpoint to '
        'write')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    counts = wise_ft(args.pretrained, args.finetuned, args.alpha, args.out)
    print(f'{args.out}: alpha={args.alpha}, {counts["mixed"]} tensors '
          f'interpolated, {counts["kept"]} kept from the fine-tuned model')


if __name__ == '__main__':
    main()
