# DeepLabV3+ R50-D8 80k ADE20K 512x512 fine-tuned with OLOR
# (configs/_base_/olor.py): after every SGD step each
# ImageNet-pretrained backbone weight is pulled back toward its pretrained
# value, by a layer-wise amount. Everything else is the upstream config.
_base_ = [
    'mmseg::deeplabv3plus/'
    'deeplabv3plus_r50-d8_4xb4-80k_ade20k-512x512.py', '../_base_/olor.py'
]
# layers: ResNetV1c: the deep stem = 0, then each residual block (R50: 0..16)
optim_wrapper = {{_base_.olor_optim_wrapper}}
