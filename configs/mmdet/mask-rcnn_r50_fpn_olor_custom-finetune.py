# Fine-tune a COCO-pretrained Mask R-CNN R50-FPN on a small data set of your
# own with new classes, as in MMDetection's "train with customized datasets"
# guide, with OLOR: after every step each weight the COCO model learned is
# pulled back toward its COCO value, except the class-specific layers, which
# are new. Adapt the three marked blocks; the rest is the upstream config.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['olor_mm'], allow_failed_imports=False)

# (1) your classes and data, in COCO format. These are the demo's shapes;
# try the recipe with generated data:
#   python tools/make_demo_data.py --layout coco \
#       --classes star,cross,ring,arrow --out data/custom --num-train 200
classes = ('star', 'cross', 'ring', 'arrow')
data_root = 'data/custom/'
metainfo = dict(classes=classes)
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/')))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/')))
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

# (3) OLOR. Everything the COCO model learned and your task reuses rolls
# back; fc_cls, fc_reg (bbox head) and conv_logits (mask head) are sized by
# your classes, start random and train freely. For a model with other heads
# list their class-agnostic parts here instead.
pretrained = ('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs',
              'roi_head.mask_head.convs', 'roi_head.mask_head.upsample')
optim_wrapper = dict(
    # the constructor attaches the rollback to the optimizer: any type works,
    # also the AmpOptimWrapper upstream --amp writes
    type='OLOROptimWrapper',
    constructor='LayerwiseRollbackConstructor',
    paramwise_cfg=dict(
        # lam_eff = lam_i * lr_t / lr_0: warm-up and decay apply to the
        # rollback as they do to the learning rate (the reference code's)
        scale_with_lr=True,
        rollback_max=0.01,  # iota1: lam of the stem, the shallowest layer
        rollback_min=0.0,  # iota2: lam of the deepest pretrained layer
        rollback_power=1.0,  # gamma: lam decays linearly with depth
        # numbered in this order: ResNet stem and blocks, FPN, RPN, RoI
        # feature layers (the deepest, lam close to rollback_min)
        pretrained_prefixes=pretrained,
        layer_unit='block',
        # rollback replaces weight decay on the pretrained weights; the new
        # class-specific layers keep the upstream weight decay
        custom_keys={k: dict(decay_mult=0.)
                     for k in pretrained}))
# per-stage drift from the COCO weights at every log line
custom_hooks = [dict(type='RollbackDriftHook', prefixes=('backbone', 'neck'))]
# the upstream schedule (12 epochs, lr 0.02 for 8 GPUs x 2 images); on
# fewer GPUs train with --auto-scale-lr
