# Forgetting benchmark, step 1: pre-train the small Mask R-CNN on digits 0-4.
# Its checkpoint plays the "pretrained model" (benchmarks/forgetting.py).
_base_ = [
    './_base_/mask-rcnn_r18-tiny_digits.py',
    '../demo/_base_/schedule_pretrain.py'
]

train_cfg = dict(max_iters=1200, val_interval=1200)
default_hooks = dict(checkpoint=dict(interval=1200))
