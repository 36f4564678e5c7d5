# Segmentation step 1: pre-train the small UperNet on the upstream classes
# (circle, square, triangle). Its checkpoint plays the "pretrained model".
_base_ = './_base_/upernet_r18-tiny_demo.py'
