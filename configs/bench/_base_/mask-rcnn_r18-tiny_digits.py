# The forgetting benchmark's model: the demo's small Mask R-CNN (ResNet-18 at
# a quarter width, 64-channel FPN and heads) on 96 px canvases of MNIST
# digits (tools/make_digit_data.py), on digits 0-4 (the pre-training's).
_base_ = '../../demo/_base_/mask-rcnn_r18-tiny_demo.py'

data_root = 'data/digits/upstream/'
classes = ('0', '1', '2', '3', '4')
img_scale = (96, 96)

model = dict(
    rpn_head=dict(anchor_generator=dict(scales=[3])),  # anchors 12..192 px
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)),
        mask_head=dict(num_classes=len(classes))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackDetInputs'),  # no flip: digits are not mirror-symmetric
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'instances_val.json')
test_evaluator = val_evaluator
