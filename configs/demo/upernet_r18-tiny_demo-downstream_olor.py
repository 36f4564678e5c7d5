# Segmentation step 2b: the same fine-tuning with OLOR's rollback toward the
# pretrained weights after every AdamW step.
_base_ = './_base_/upernet_r18-tiny_demo-finetune.py'

# Everything the upstream pre-training trained and the downstream task
# reuses; the classifiers (decode_head.conv_seg, auxiliary_head.conv_seg)
# are new.
pretrained = ('backbone', 'decode_head.lateral_convs',
              'decode_head.psp_modules', 'decode_head.bottleneck',
              'decode_head.fpn_convs', 'decode_head.fpn_bottleneck',
              'auxiliary_head.convs')
optim_wrapper = dict(
    type='OLOROptimWrapper',
    # lam_eff = lam_i * lr_t / lr_0: the warm-up and the cosine decay apply
    # to the rollback too
    scale_with_lr=True,
    constructor='LayerwiseRollbackConstructor',
    paramwise_cfg=dict(
        rollback_max=0.01,  # iota1: lam of the stem
        rollback_min=0.0,  # iota2: lam of the deepest pretrained layer
        rollback_power=1.0,  # gamma: linear decay with depth
        # numbered in this order: backbone blocks, then the head's modules
        pretrained_prefixes=pretrained,
        layer_unit='block',  # ResNetV1c stem, blocks; other modules by child
        # rollback replaces weight decay on the pretrained weights
        custom_keys={k: dict(decay_mult=0.) for k in pretrained}))
