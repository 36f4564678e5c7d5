# OLOR for fine-tuning a whole pretrained Mask R-CNN on new classes (load_from
# a detector, as in MMDetection's "train with customized datasets"): every
# layer the pretrained detector learned and the new task reuses rolls back;
# fc_cls, fc_reg (bbox head) and conv_logits (mask head) are sized by the new
# classes, start random and train freely. Take the wrapper from it:
#   optim_wrapper = {{_base_.olor_optim_wrapper}}
_base_ = './olor_optim_wrapper.py'
# numbered in this order: ResNet stem and blocks, FPN, RPN, RoI feature
# layers (the deepest, lam close to rollback_min)
olor_pretrained = ('backbone', 'neck', 'rpn_head',
                   'roi_head.bbox_head.shared_fcs', 'roi_head.mask_head.convs',
                   'roi_head.mask_head.upsample')
olor_optim_wrapper = dict(
    paramwise_cfg=dict(
        pretrained_prefixes=olor_pretrained,
        # rollback replaces weight decay on every pretrained weight; the new
        # class-specific layers keep the weight decay
        custom_keys={k: dict(decay_mult=0.)
                     for k in olor_pretrained}))
