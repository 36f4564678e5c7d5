# OLOR for an upstream MMDetection / MMSegmentation config: after every
# optimizer step each ImageNet-pretrained backbone weight is pulled back
# toward its pretrained value, by a layer-wise amount. Inherit it beside the
# upstream config and take the wrapper from it (the upstream schedule sets
# optim_wrapper, and MMEngine refuses a key that two bases set):
#
#   _base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
#             '../_base_/olor.py']
#   optim_wrapper = {{_base_.olor_optim_wrapper}}
#
# The wrapper block is configs/_base_/olor_optim_wrapper.py; it merges into
# the upstream optim_wrapper: the optimizer, its lr, weight decay of the other
# modules, clipping and custom_keys stay the upstream ones.
_base_ = './olor_optim_wrapper.py'
custom_imports = dict(imports=['olor_mm'], allow_failed_imports=False)
# per-stage drift ||theta - theta0|| / ||theta0|| and lam_eff at every log
# line (tools/analysis_tools/plot_drift.py draws them)
custom_hooks = [dict(type='RollbackDriftHook')]
