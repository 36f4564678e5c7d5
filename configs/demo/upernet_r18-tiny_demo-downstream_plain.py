# Segmentation step 2a: plain fine-tuning (AdamW with weight decay), the
# baseline OLOR is compared with. Same data, budget and seed as step 2b.
_base_ = './_base_/upernet_r18-tiny_demo-finetune.py'
