# SegFormer MiT-B0 160k ADE20K 512x512 fine-tuned with OLOR
# (configs/_base_/olor.py): after every AdamW step each
# ImageNet-pretrained backbone weight is pulled back toward its pretrained
# value, by a layer-wise amount. Everything else is the upstream config.
_base_ = [
    'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
    '../_base_/olor.py'
]
# layers: MiT: per stage its patch embed, its blocks, its norm (B0: 0..15)
optim_wrapper = {{_base_.olor_optim_wrapper}}
