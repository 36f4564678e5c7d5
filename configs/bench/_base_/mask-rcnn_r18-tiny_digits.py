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

# the demo's pipelines at img_scale, training without the flip: digits are
# not mirror-symmetric
train_pipeline = [
    dict(step, scale=img_scale) if step.type == 'Resize' else step
    for step in _base_.train_pipeline if step.type != 'RandomFlip'
]
test_pipeline = [
    dict(step, scale=img_scale) if step.type == 'Resize' else step
    for step in _base_.test_pipeline
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
