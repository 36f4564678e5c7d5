# The demo's fine-tuning schedule: the pre-training's at half the lr, decayed
# to 1e-5; per-stage backbone drift (and lam_eff under OLOR) at every log
# line, for plain and OLOR runs alike (tools/analysis_tools/plot_drift.py
# overlays them).
_base_ = './schedule_pretrain.py'
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=0),
]
custom_hooks = [dict(type='RollbackDriftHook')]
