# RetinaNet R50-FPN 1x COCO fine-tuned with OLOR: after every SGD step each
# ImageNet-pretrained backbone weight is pulled back toward its pretrained
# value, by a layer-wise amount. Everything else is the upstream config.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['olor_mm'], allow_failed_imports=False)
optim_wrapper = dict(
    # the constructor attaches the rollback to the optimizer: it works
    # under any type, also the AmpOptimWrapper upstream --amp writes
    type='OLOROptimWrapper',
    constructor='LayerwiseRollbackConstructor',
    paramwise_cfg=dict(
        # lam_eff = lam_i * lr_t / lr_0: warm-up and decay apply to the
        # rollback as they do to the learning rate (the reference code's)
        scale_with_lr=True,
        rollback_max=0.01,  # iota1: lam of the stem, the shallowest layer
        rollback_min=0.0,  # iota2: lam of the deepest backbone block
        rollback_power=1.0,  # gamma: lam decays linearly with depth
        # only the pretrained backbone rolls back; neck and heads start
        # random and train with the upstream optimizer alone
        pretrained_prefixes=('backbone', ),
        # stem = 0, then each residual block (ResNet-50: 0..16)
        layer_unit='block',
        # rollback replaces weight decay on the pretrained weights; neck
        # and heads keep the upstream weight decay
        custom_keys={'backbone': dict(decay_mult=0.)}))
# per-stage drift ||theta - theta0|| / ||theta0|| and lam_eff at every log
# line (tools/analysis_tools/plot_drift.py draws them)
custom_hooks = [dict(type='RollbackDriftHook')]
