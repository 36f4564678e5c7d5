# Step 1 of the demo: pre-train the small Mask R-CNN on the upstream classes
# (circle, square, triangle). Its checkpoint plays the "pretrained model".
_base_ = './_base_/mask-rcnn_r18-tiny_demo.py'
