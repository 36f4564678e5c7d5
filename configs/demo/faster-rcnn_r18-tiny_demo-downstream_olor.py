# The demo fine-tuning with a Faster R-CNN (boxes only), started from the
# upstream Mask R-CNN checkpoint: backbone, FPN, RPN and the box head's
# shared layers load from it (the mask head's weights are unused).
_base_ = './_base_/mask-rcnn_r18-tiny_demo-finetune.py'

model = dict(
    type='FasterRCNN',
    roi_head=dict(mask_roi_extractor=None, mask_head=None))
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator

pretrained = ('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs')
optim_wrapper = dict(
    type='OLOROptimWrapper',
    # lam_eff = lam_i * lr_t / lr_0: warm-up and decay apply to the rollback
    scale_with_lr=True,
    constructor='LayerwiseRollbackConstructor',
    paramwise_cfg=dict(
        rollback_max=0.01,  # iota1: lam of the stem
        rollback_min=0.0,  # iota2: lam of the deepest pretrained layer
        rollback_power=1.0,  # gamma: linear decay with depth
        pretrained_prefixes=pretrained,  # in depth order
        layer_unit='block',  # ResNet stem, blocks; other modules by child
        # rollback replaces weight decay on the pretrained weights
        custom_keys={k: dict(decay_mult=0.) for k in pretrained}))
