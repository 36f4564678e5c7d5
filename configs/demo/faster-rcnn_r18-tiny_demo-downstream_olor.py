# The demo fine-tuning with a Faster R-CNN (boxes only), started from the
# upstream Mask R-CNN checkpoint: backbone, FPN, RPN and the box head's
# shared layers load from it and roll back (the mask head's weights are
# unused). The OLOR settings are the Mask R-CNN demo's.
_base_ = './mask-rcnn_r18-tiny_demo-downstream_olor.py'

model = dict(
    type='FasterRCNN', roi_head=dict(mask_roi_extractor=None, mask_head=None))
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator

pretrained = ('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs')
optim_wrapper = dict(
    paramwise_cfg=dict(
        pretrained_prefixes=pretrained,  # in depth order
        # rollback replaces weight decay on the pretrained weights
        custom_keys=dict(
            _delete_=True, **{k: dict(decay_mult=0.)
                              for k in pretrained})))
