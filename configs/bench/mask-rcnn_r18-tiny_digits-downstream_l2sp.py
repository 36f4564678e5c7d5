# (d) L2-SP (Li et al., 2018) in place of the rollback: the OLOR config with
# one key changed, the anchored method. The same constructor decides which
# weights are pretrained; its rollback_* keys are then unused.
_base_ = './mask-rcnn_r18-tiny_digits-downstream_olor.py'

optim_wrapper = dict(
    paramwise_cfg=dict(
        method='l2sp',
        alpha=0.1,  # alpha/2 ||w - w0||^2 on the pretrained weights
        beta=0.01))  # beta/2 ||w||^2 on the new, class-specific ones
