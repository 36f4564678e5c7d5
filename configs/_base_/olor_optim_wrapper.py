# OLOR's optimizer-wrapper block with the defaults of the paper's reference
# code, for configs/_base_/olor.py and the other OLOR bases to build on:
# rollback of the pretrained backbone only. It merges into the optim_wrapper
# of the config that takes it (optim_wrapper = {{_base_.olor_optim_wrapper}}),
# so the optimizer, its lr, the weight decay of the other modules, clipping
# and custom_keys stay that config's.
olor_optim_wrapper = dict(
    # the constructor attaches the rollback to the optimizer, so the plain
    # wrapper rolls back; any type works, also the AmpOptimWrapper that
    # upstream --amp writes
    type='OptimWrapper',
    constructor='LayerwiseRollbackConstructor',
    # scale_with_lr is left at its default, True: lam_eff = lam_i * lr_t /
    # lr_0, so warm-up and decay apply to the rollback as they do to the
    # learning rate (the reference code's); --cfg-options
    # optim_wrapper.paramwise_cfg.scale_with_lr=False turns it off.
    paramwise_cfg=dict(
        rollback_max=0.01,  # iota1: lam of the shallowest trained layer
        rollback_min=0.0,  # iota2: lam of the deepest pretrained layer
        rollback_power=1.0,  # gamma: lam decays linearly with depth
        # only the pretrained backbone rolls back; neck and heads start
        # random and train with the upstream optimizer alone
        pretrained_prefixes=('backbone', ),
        # stem (or patch embed) = 0, then each block: each config says how
        # its backbone is numbered
        layer_unit='block',
        # rollback replaces weight decay on the pretrained weights; the
        # other modules keep the upstream weight decay
        custom_keys={'backbone': dict(decay_mult=0.)}))
