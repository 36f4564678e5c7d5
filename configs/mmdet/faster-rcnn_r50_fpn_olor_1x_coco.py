# Faster R-CNN R50-FPN 1x COCO fine-tuned with OLOR (configs/_base_/olor.py):
# after every SGD step each ImageNet-pretrained backbone weight is pulled
# back toward its pretrained value, by a layer-wise amount. Everything else
# is the upstream config.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', '../_base_/olor.py'
]
# layers: stem = 0, then each residual block (ResNet-50: 0..16)
optim_wrapper = {{_base_.olor_optim_wrapper}}
