# UperNet Swin-T 160k ADE20K 512x512 fine-tuned with OLOR: after every AdamW
# step each ImageNet-pretrained backbone weight is pulled back toward its
# pretrained value, by a layer-wise amount. Everything else is the upstream
# config.
_base_ = ('mmseg::swin/swin-tiny-patch4-window7-in1k-pre_'
          'upernet_8xb2-160k_ade20k-512x512.py')
custom_imports = dict(imports=['olor_mm'], allow_failed_imports=False)
optim_wrapper = dict(
    # the constructor attaches the rollback to the optimizer, so the plain
    # wrapper rolls back; upstream tools/train.py --amp accepts only this
    # type (and rewrites it to AmpOptimWrapper, which rolls back too)
    type='OptimWrapper',
    constructor='LayerwiseRollbackConstructor',
    paramwise_cfg=dict(
        # lam_eff = lam_i * lr_t / lr_0: warm-up and poly decay apply to the
        # rollback as they do to the learning rate (the reference code's)
        scale_with_lr=True,
        rollback_max=0.01,  # iota1: lam of the stem, the shallowest layer
        rollback_min=0.0,  # iota2: lam of the deepest backbone block
        rollback_power=1.0,  # gamma: lam decays linearly with depth
        # only the pretrained backbone rolls back; the decode and auxiliary
        # heads start random and train with the upstream optimizer alone
        pretrained_prefixes=('backbone', ),
        # Swin: patch embed = 0, then each block; a stage's patch merging
        # and output norm form one layer after its blocks (Swin-T: 0..16)
        layer_unit='block',
        # rollback replaces weight decay on the pretrained weights; the
        # heads keep the upstream weight decay (and upstream custom_keys)
        custom_keys={'backbone': dict(decay_mult=0.)}))
# per-stage drift ||theta - theta0|| / ||theta0|| and lam_eff at every log
# line (tools/analysis_tools/plot_drift.py draws them)
custom_hooks = [dict(type='RollbackDriftHook')]
