# (g) Linear probe, the first stage of LP-FT (Kumar et al., ICLR 2022): every
# pretrained weight stays at its pretrained value (lr_mult=0 on the layers
# that configs/_base_/olor_mask-rcnn_finetune.py numbers as pretrained); only
# the new class-specific layers (fc_cls, fc_reg, conv_logits: linear maps of
# the frozen features) train. The backbone's BN statistics stay too
# (norm_eval=True in the base). Stage 2 (LP-FT) fine-tunes the result: the
# plain (or OLOR) config with load_from=<this run's last checkpoint>.
# An lr of 0 stays 0 under a schedule only without eta_min: a cosine
# schedule toward eta_min > 0 raises the frozen groups' lr to it and moves
# them, so the cosine here ends at 0 (the other methods' at 1e-5).
_base_ = './_base_/mask-rcnn_r18-tiny_digits-finetune.py'

trunk = ('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs',
         'roi_head.mask_head.convs', 'roi_head.mask_head.upsample')
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={k: dict(lr_mult=0., decay_mult=0.)
                     for k in trunk}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, end=30),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=False)
]
