# Fine-tuning the upstream-pretrained demo model on the downstream classes
# (star, cross, ring, arrow): the whole detector starts from the pretrained
# checkpoint (load_from) except the class-specific layers, which are new.
_base_ = ['./mask-rcnn_r18-tiny_demo.py', './schedule_finetune.py']

data_root = 'data/demo/downstream/'
classes = ('star', 'cross', 'ring', 'arrow')
max_iters = 600
load_from = 'work_dirs/demo/det/upstream/iter_1500.pth'

model = dict(
    # BN statistics stay the pretrained ones, as in MMDetection fine-tuning
    backbone=dict(norm_eval=True),
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)),
        mask_head=dict(num_classes=len(classes))))
train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
