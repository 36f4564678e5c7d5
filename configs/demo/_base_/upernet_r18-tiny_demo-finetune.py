# Fine-tuning the upstream-pretrained demo UperNet on the downstream classes
# (star, cross, ring, arrow): the whole segmentor starts from the pretrained
# checkpoint (load_from) except the classifiers (conv_seg), which are new.
_base_ = './upernet_r18-tiny_demo.py'

data_root = 'data/demo_seg/downstream/'
classes = ('background', 'star', 'cross', 'ring', 'arrow')
palette = [[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0],
           [0, 200, 100]]
max_iters = 1000
load_from = 'work_dirs/demo/seg/upstream/iter_2000.pth'

model = dict(
    # BN statistics stay the pretrained ones, as in fine-tuning
    backbone=dict(norm_eval=True),
    decode_head=dict(num_classes=len(classes)),
    auxiliary_head=dict(num_classes=len(classes)))
metainfo = dict(classes=classes, palette=palette)
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader

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
