# (e) Linear-probe style reference: the backbone stays frozen at its
# pretrained weights (stem and all four stages); neck and heads train.
_base_ = './_base_/mask-rcnn_r18-tiny_digits-finetune.py'

model = dict(backbone=dict(frozen_stages=4))
