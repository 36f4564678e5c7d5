# Segmentation step 1: pre-train the small UperNet on the upstream classes
# (circle, square, triangle). Its checkpoint plays the "pretrained model".
_base_ = ['./_base_/upernet_r18-tiny_demo.py', './_base_/schedule_pretrain.py']

train_cfg = dict(max_iters=2000, val_interval=2000)
optim_wrapper = dict(optimizer=dict(weight_decay=0.01))
default_hooks = dict(checkpoint=dict(interval=2000))
