# Fine-tuning the upstream-pretrained demo UperNet on the downstream classes
# (star, cross, ring, arrow): the whole segmentor starts from the pretrained
# checkpoint (load_from) except the classifiers (conv_seg), which are new.
_base_ = ['./upernet_r18-tiny_demo.py', './schedule_finetune.py']

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
optim_wrapper = dict(optimizer=dict(weight_decay=0.01))
default_hooks = dict(checkpoint=dict(interval=max_iters))
