# UperNet R50 40k Cityscapes 512x1024 fine-tuned with OLOR
# (configs/_base_/olor.py): after every SGD step each
# ImageNet-pretrained backbone weight is pulled back toward its pretrained
# value, by a layer-wise amount. Everything else is the upstream config.
_base_ = [
    'mmseg::upernet/upernet_r50_4xb2-40k_cityscapes-512x1024.py',
    '../_base_/olor.py'
]
# layers: ResNetV1c: the deep stem = 0, then each residual block (R50: 0..16)
optim_wrapper = {{_base_.olor_optim_wrapper}}
