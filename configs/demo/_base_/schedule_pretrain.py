# The demo's training schedule (pre-training): AdamW, a 50-iteration linear
# warm-up, then cosine decay to 1 % of the lr at the run's last iteration.
# Every config that takes it sets its length:
#   train_cfg = dict(max_iters=N, val_interval=N)
train_cfg = dict(type='IterBasedTrainLoop')
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    # no end: MMEngine ends it at train_cfg.max_iters, and T_max = end
    dict(type='CosineAnnealingLR', eta_min=2e-5, by_epoch=False, begin=0),
]
randomness = dict(seed=0)
