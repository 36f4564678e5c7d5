# Step 2b of the demo: the same fine-tuning with OLOR's rollback toward the
# pretrained weights after every AdamW step. Everything the upstream
# pre-training trained and the downstream task reuses rolls back, with the
# reference code's defaults (configs/_base_/olor_mask-rcnn_finetune.py); the
# class-specific layers (fc_cls, fc_reg, conv_logits) are new. lam_eff = lam_i
# * lr_t / lr_0: the warm-up and the cosine decay apply to the rollback too.
_base_ = [
    './_base_/mask-rcnn_r18-tiny_demo-finetune.py',
    '../_base_/olor_mask-rcnn_finetune.py'
]
optim_wrapper = {{_base_.olor_optim_wrapper}}
