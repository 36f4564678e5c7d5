# (c) OLOR with the reference code's numbering: every parameter tensor is a
# layer of its own (lam decays tensor by tensor instead of block by block).
_base_ = './mask-rcnn_r18-tiny_digits-downstream_olor.py'

optim_wrapper = dict(paramwise_cfg=dict(layer_unit='param'))
