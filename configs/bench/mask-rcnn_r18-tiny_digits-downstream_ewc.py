# (f) EWC (Kirkpatrick et al., 2017) in place of the rollback: the OLOR
# config with the anchored method changed, like L2-SP, plus where the
# Fisher information comes from. The same constructor decides which weights
# are pretrained; its rollback_* keys are then unused.
_base_ = './mask-rcnn_r18-tiny_digits-downstream_olor.py'

upstream_root = 'data/digits/upstream/'
optim_wrapper = dict(
    paramwise_cfg=dict(
        method='ewc',
        # alpha/2 sum_i F_i (w_i - w0_i)^2 on the pretrained weights, F
        # divided by its mean (fisher_normalize): alpha on L2-SP's scale
        alpha=1.0,
        beta=0.0,  # no L2 on the new, class-specific layers (EWC has none)
        # F = mean over 25 batches of (dL_upstream / dw)^2 at the pretrained
        # weights (the first step), with the pre-trained model (its digit
        # 0-4 heads) on its data
        fisher_batches=25,
        fisher_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(
                type='CocoDataset',
                data_root=upstream_root,
                metainfo=dict(classes=('0', '1', '2', '3', '4')),
                data_prefix=dict(img='images/'),
                ann_file='instances_train.json',
                filter_cfg=dict(filter_empty_gt=True, min_size=4),
                pipeline={{_base_.train_pipeline}})),
        fisher_model='configs/bench/mask-rcnn_r18-tiny_digits-upstream.py',
        # benchmarks/forgetting.py sets it to its pre-training's checkpoint
        fisher_checkpoint='work_dirs/forgetting/upstream/iter_1200.pth'))
