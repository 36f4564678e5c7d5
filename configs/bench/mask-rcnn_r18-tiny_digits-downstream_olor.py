# (b) OLOR with the defaults of the paper's reference code.
_base_ = './_base_/mask-rcnn_r18-tiny_digits-finetune.py'

# Every layer the pre-training trained and the digits 5-9 task reuses; the
# class-specific layers (fc_cls, fc_reg, conv_logits) are new.
pretrained = ('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs',
              'roi_head.mask_head.convs', 'roi_head.mask_head.upsample')
optim_wrapper = dict(
    # scale_with_lr=True (the default): lam_eff = lam_i * lr_t / lr_0
    type='OLOROptimWrapper',
    constructor='LayerwiseRollbackConstructor',
    paramwise_cfg=dict(
        rollback_max=0.01,  # iota1: lam of the stem
        rollback_min=0.0,  # iota2: lam of the deepest pretrained layer
        rollback_power=1.0,  # gamma: linear decay with depth
        # numbered in this order: backbone blocks, FPN, RPN, RoI heads
        pretrained_prefixes=pretrained,
        layer_unit='block',  # ResNet stem, blocks; other modules by child
        # the anchor replaces weight decay on the pretrained weights
        custom_keys={k: dict(decay_mult=0.) for k in pretrained}))
