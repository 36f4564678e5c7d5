# Fine-tuning the upstream-pretrained demo model on the downstream classes
# (star, cross, ring, arrow): the whole detector starts from the pretrained
# checkpoint (load_from) except the class-specific layers, which are new.
_base_ = './mask-rcnn_r18-tiny_demo.py'

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
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-5,
         by_epoch=False, begin=0, end=max_iters),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
# per-stage backbone drift (and lam_eff under OLOR) at every log line, for
# plain and OLOR runs alike: tools/analysis_tools/plot_drift.py overlays them
custom_hooks = [dict(type='RollbackDriftHook')]
