# UperNet Swin-T 160k ADE20K 512x512 fine-tuned with OLOR
# (configs/_base_/olor.py): after every AdamW step each
# ImageNet-pretrained backbone weight is pulled back toward its pretrained
# value, by a layer-wise amount. Everything else is the upstream config.
_base_ = [
    'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_'
    'upernet_8xb2-160k_ade20k-512x512.py', '../_base_/olor.py'
]
# layers: patch embed = 0, then each Swin block; a stage's patch merging
# and output norm form one layer after its blocks (Swin-T: 0..16)
optim_wrapper = {{_base_.olor_optim_wrapper}}
