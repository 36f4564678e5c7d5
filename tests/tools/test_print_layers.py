"""olor_mm/tools/print_layers.py on a plain MMEngine config (misuse probe
C6)."""

from toy import ToyClassifier


def test_C6_print_layers_builds_a_plain_mmengine_config():
    from mmengine.config import Config
    from mmengine.registry import MODELS

    from olor_mm.tools import pretrained as make_pretrained
    MODELS.register_module(
        'ToyClassifierForC6', module=ToyClassifier, force=True)
    cfg = Config(
        dict(default_scope=None, model=dict(type='ToyClassifierForC6')))
    assert isinstance(make_pretrained.build_model(cfg), ToyClassifier)
