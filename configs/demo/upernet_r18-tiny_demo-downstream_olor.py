# Segmentation step 2b: the same fine-tuning with OLOR's rollback toward the
# pretrained weights after every AdamW step. The backbone and every head
# module the pre-training trained roll back, with the reference code's
# defaults (configs/_base_/olor_upernet_finetune.py); the classifiers
# (conv_seg) are new. lam_eff = lam_i * lr_t / lr_0: the warm-up and the
# cosine decay apply to the rollback too.
_base_ = [
    './_base_/upernet_r18-tiny_demo-finetune.py',
    '../_base_/olor_upernet_finetune.py'
]
optim_wrapper = {{_base_.olor_optim_wrapper}}
