# (b) OLOR with the defaults of the paper's reference code: every layer the
# pre-training trained and the digits 5-9 task reuses rolls back
# (configs/_base_/olor_mask-rcnn_finetune.py); the class-specific layers
# (fc_cls, fc_reg, conv_logits) are new.
_base_ = [
    './_base_/mask-rcnn_r18-tiny_digits-finetune.py',
    '../_base_/olor_mask-rcnn_finetune.py'
]
optim_wrapper = {{_base_.olor_optim_wrapper}}
