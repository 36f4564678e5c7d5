# Forgetting benchmark, step 2: fine-tune the digit-0-4 model on digits 5-9.
# Every method config below inherits this file: same data, schedule, seed.
# load_from is the pretrained checkpoint without its class-specific layers
# (fc_cls, fc_reg, conv_logits), which start new; benchmarks/forgetting.py
# writes it and sets load_from.
_base_ = [
    './mask-rcnn_r18-tiny_digits.py', '../../demo/_base_/schedule_finetune.py'
]

data_root = 'data/digits/downstream/'
classes = ('5', '6', '7', '8', '9')
max_iters = 250
load_from = 'work_dirs/forgetting/pretrained_shared.pth'

model = dict(
    # BN statistics stay the pretrained ones, as in MMDetection fine-tuning
    backbone=dict(norm_eval=True))
train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# the demo's fine-tuning schedule with a 30-iteration warm-up
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, end=30),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
