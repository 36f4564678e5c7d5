# OLOR for fine-tuning a whole pretrained UperNet (with its FCN auxiliary
# head) on new classes (load_from a segmentor): the backbone and every head
# module the pretrained segmentor learned roll back; the classifiers
# (decode_head.conv_seg, auxiliary_head.conv_seg) are sized by the new
# classes, start random and train freely. Take the wrapper from it:
#   optim_wrapper = {{_base_.olor_optim_wrapper}}
_base_ = './olor_optim_wrapper.py'
# numbered in this order: backbone stem and blocks, then the head's modules
olor_pretrained = ('backbone', 'decode_head.lateral_convs',
                   'decode_head.psp_modules', 'decode_head.bottleneck',
                   'decode_head.fpn_convs', 'decode_head.fpn_bottleneck',
                   'auxiliary_head.convs')
olor_optim_wrapper = dict(
    paramwise_cfg=dict(
        pretrained_prefixes=olor_pretrained,
        # rollback replaces weight decay on every pretrained weight
        custom_keys={k: dict(decay_mult=0.)
                     for k in olor_pretrained}))
