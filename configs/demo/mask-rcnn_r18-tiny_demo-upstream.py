# Step 1 of the demo: pre-train the small Mask R-CNN on the upstream classes
# (circle, square, triangle). Its checkpoint plays the "pretrained model".
_base_ = [
    './_base_/mask-rcnn_r18-tiny_demo.py', './_base_/schedule_pretrain.py'
]

train_cfg = dict(max_iters=1500, val_interval=1500)
default_hooks = dict(checkpoint=dict(interval=1500))
