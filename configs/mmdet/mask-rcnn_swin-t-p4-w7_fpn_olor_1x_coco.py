# Mask R-CNN Swin-T FPN 1x COCO fine-tuned with OLOR
# (configs/_base_/olor.py): after every AdamW step each ImageNet-pretrained
# backbone weight is pulled back toward its pretrained value, by a layer-wise
# amount. Everything else is the upstream config.
_base_ = [
    'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', '../_base_/olor.py'
]
# layers: patch embed = 0, then each Swin block; a stage's patch merging
# and output norm form one layer after its blocks (Swin-T: 0..16). The
# upstream custom_keys for norms and position tables stay.
optim_wrapper = {{_base_.olor_optim_wrapper}}
