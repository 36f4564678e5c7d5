# Fine-tune a COCO-pretrained Mask R-CNN R50-FPN on a small data set of your
# own with new classes, as in MMDetection's "train with customized datasets"
# guide, with OLOR: after every step each weight the COCO model learned is
# pulled back toward its COCO value, except the class-specific layers, which
# are new. Adapt the three marked blocks; the rest is the upstream config.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/olor_mask-rcnn_finetune.py'
]
custom_imports = dict(imports=['olor_mm'], allow_failed_imports=False)

# (1) your classes and data, in COCO format. These are the demo's shapes;
# try the recipe with generated data:
#   python tools/make_demo_data.py --layout coco \
#       --classes star,cross,ring,arrow --out data/custom --num-train 200
classes = ('star', 'cross', 'ring', 'arrow')
data_root = 'data/custom/'
metainfo = dict(classes=classes)
# ann_file and data_prefix keep the COCO names of the base config
# (annotations/instances_train2017.json and train2017/, the same with val);
# set them here if your files are named otherwise.
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# (2) the model: new class-specific layers, everything else from COCO.
# load_from overwrites the ImageNet backbone, so it is not downloaded.
model = dict(
    backbone=dict(init_cfg=None),
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)),
        mask_head=dict(num_classes=len(classes))))
load_from = 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth'  # noqa

# (3) OLOR (configs/_base_/olor_mask-rcnn_finetune.py): everything the COCO
# model learned and your task reuses rolls back, from the stem (lam =
# rollback_max) to the RoI feature layers (lam close to rollback_min);
# fc_cls, fc_reg (bbox head) and conv_logits (mask head) are sized by your
# classes, start random and train freely. For a model with other heads set
# optim_wrapper.paramwise_cfg.pretrained_prefixes to their class-agnostic
# parts instead.
optim_wrapper = {{_base_.olor_optim_wrapper}}
# per-stage drift from the COCO weights at every log line
custom_hooks = [dict(type='RollbackDriftHook', prefixes=('backbone', 'neck'))]
# the upstream schedule (12 epochs, lr 0.02 for 8 GPUs x 2 images); on
# fewer GPUs train with --auto-scale-lr
