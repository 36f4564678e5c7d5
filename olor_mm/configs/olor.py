"""OLOR's block for any MMDetection / MMSegmentation config, imported.

After every optimizer step each ImageNet-pretrained backbone weight is
pulled back toward its pretrained value theta0, by a layer-wise amount
(Eq. 6, 8/9 of the paper): ``theta_t = theta_hat_t + lam_eff * (theta0 -
theta_hat_t)``, ``lam_i = iota2 + (1 - i/n) ** gamma * (iota1 - iota2)``.

A config inherits it with an import, which every tool that reads the
config runs while it parses it: MMDetection's and MMSegmentation's own
``tools/train.py``, ``mim train``, olor-mm's tools (MMEngine resolves
``_base_`` before the config's ``custom_imports`` run, so an
``olor_mm::`` base needs olor-mm imported first; an import does not)::

    _base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
    from olor_mm.configs.olor import *  # noqa: F401,F403
    optim_wrapper = olor_optim_wrapper  # merges into the upstream one

``_base_`` comes first (MMEngine reads a config whose first statement is an
import as a pure-Python one). ``optim_wrapper = olor_optim_wrapper`` merges
into the upstream ``optim_wrapper``: the optimizer, its lr, the weight
decay of the other modules, clipping and ``custom_keys`` stay the
upstream ones. The same block as the ``olor_mm::_base_/olor.py`` base
(``configs/_base_/olor.py`` of the repository; a test keeps them equal).
"""
__all__ = ['custom_imports', 'custom_hooks', 'olor_optim_wrapper']

# registers the constructor and the hook wherever the dumped config is
# read again (tools/test.py on the work dir's copy, a resume)
custom_imports = dict(imports=['olor_mm'], allow_failed_imports=False)
# per-stage drift ||theta - theta0|| / ||theta0|| and lam_eff at every log
# line (python -m olor_mm.tools.plot_drift draws them)
custom_hooks = [dict(type='RollbackDriftHook')]
olor_optim_wrapper = dict(
    # the constructor attaches the rollback to the optimizer, so the plain
    # wrapper rolls back; any type works, also the AmpOptimWrapper that
    # upstream --amp writes
    type='OptimWrapper',
    constructor='LayerwiseRollbackConstructor',
    # scale_with_lr is left at its default, True: lam_eff = lam_i * lr_t /
    # lr_0, so warm-up and decay apply to the rollback as to the lr
    paramwise_cfg=dict(
        rollback_max=0.01,  # iota1: lam of the shallowest trained layer
        rollback_min=0.0,  # iota2: lam of the deepest pretrained layer
        rollback_power=1.0,  # gamma: lam decays linearly with depth
        # only the pretrained backbone rolls back; neck and heads start
        # random and train with the upstream optimizer alone
        pretrained_prefixes=('backbone', ),
        # stem (or patch embed) = 0, then each block, by architecture
        layer_unit='block',
        # rollback replaces weight decay on the pretrained weights; the
        # other modules keep the upstream weight decay
        custom_keys={'backbone': dict(decay_mult=0.)}))
