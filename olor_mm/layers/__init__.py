"""Layer numbering per architecture (plain PyTorch): which pretrained
tensor sits at which depth, for OLOR's layer-wise rollback.

- :mod:`.layer_schemes`: the scheme registry (depth + stage view);
- :mod:`.builtin_schemes`: the MMDetection / MMSegmentation / timm
  backbones' schemes;
- :mod:`.block_discovery`: blocks found by structure for other backbones;
- :mod:`.timm_groups`: timm's own ``group_matcher``;
- :mod:`.numbering`: the numbering of a model from those sources;
- :mod:`.layer_table`: the table ``print_layers.py`` prints.
"""
