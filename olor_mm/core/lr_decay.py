"""Layer-wise learning-rate decay on OLOR's own layer numbering.

MMDetection's / MMSegmentation's ``LearningRateDecayOptimizerConstructor``
(ConvNeXt, BEiT, MAE configs) scales each backbone layer's learning rate by
``decay_rate ** (depth from the top)``. ``LayerwiseRollbackConstructor``
takes the same ``paramwise_cfg`` keys and applies the scale to the layers
it numbers for the rollback, so that rollback and learning-rate decay agree
on what a layer is:

    layer_wise:  lr_mult_i = decay_rate ** (n - i)    (layer i of 0..n)
    stage_wise:  lr_mult_s = decay_rate ** (S - 1 - s) (stage s of 0..S-1)

Parameters outside the pretrained modules keep ``lr_mult = 1``.

For a ViT / BEiT backbone both number the layers alike (patch embedding 0,
block j at j + 1) and the multipliers are the upstream ones; the final norm
is OLOR's deepest layer ``n`` (multiplier 1), where upstream lumps it with
the heads (also 1). For ConvNeXt upstream groups stage 3's blocks three by
three and gives stage 4 one id; OLOR numbers every block, so the decay is
finer (see ``tests/core/test_kernels.py``). ``num_layers`` is accepted for
compatibility and only checked against the numbering.

This module imports nothing of MMEngine.
"""
from typing import Dict, Optional

from .rollback import is_real

#: ``decay_type`` values; ``layer_wise_vit`` is upstream's BEiT alias
DECAY_TYPES = ('layer_wise', 'stage_wise', 'layer_wise_vit')
DECAY_KEYS = ('decay_rate', 'decay_type', 'num_layers')


def check_decay(decay_rate, decay_type: str) -> None:
    """Raises ValueError naming the key for a bad rate or type."""
    if not is_real(decay_rate) or not 0 < decay_rate <= 1:
        raise ValueError(
            f'paramwise_cfg.decay_rate={decay_rate!r} must be a number in '
            '(0, 1]: the learning rate of each layer is decay_rate times '
            "the next deeper one's (upstream configs use 0.65-0.9).")
    if decay_type not in DECAY_TYPES:
        raise ValueError(
            f'paramwise_cfg.decay_type={decay_type!r} is unknown; use '
            f"'layer_wise' or 'stage_wise'.")


def lr_decay_mults(layer_of: Dict[str, int],
                   count: int,
                   decay_rate: float,
                   decay_type: str = 'layer_wise',
                   stage_of: Optional[Dict[str, int]] = None,
                   stages: int = 0) -> Dict[str, float]:
    """``{parameter name: lr multiplier}`` of the pretrained parameters.

    Args:
        layer_of: Layer id ``i`` (0..count-1) of every pretrained name.
        count: Number of layers, ``n + 1``.
        decay_rate: The factor per layer (or stage).
        decay_type: ``'layer_wise'`` or ``'stage_wise'``.
        stage_of: Stage index of every pretrained name (stage_wise).
        stages: Number of stages (stage_wise).
    """
    check_decay(decay_rate, decay_type)
    if decay_type == 'stage_wise':
        return {
            name: decay_rate**(stages - 1 - s)
            for name, s in stage_of.items()
        }
    n = count - 1
    return {name: decay_rate**(n - i) for name, i in layer_of.items()}
