# (a) Plain fine-tuning: AdamW with weight decay on every weight.
_base_ = './_base_/mask-rcnn_r18-tiny_digits-finetune.py'
