# (g) The importance-weighted rollback: OLOR (b) with the pull of each
# weight scaled by its importance to the upstream task, w in [0, 1] from the
# diagonal Fisher that EWC (f) estimates, on EWC's inputs:
#     theta_t = theta_hat_t + lam_i * w * (theta0 - theta_hat_t)
_base_ = './mask-rcnn_r18-tiny_digits-downstream_ewc.py'

optim_wrapper = dict(
    paramwise_cfg=dict(
        _delete_=True,  # OLOR's keys, not EWC's alpha / beta
        rollback_max=0.01,  # iota1: lam of the shallowest layer (at w = 1)
        rollback_min=0.0,  # iota2: lam of the deepest pretrained layer
        rollback_power=1.0,  # gamma: lam decays linearly with depth
        pretrained_prefixes={{_base_.olor_pretrained}},
        custom_keys={{_base_.olor_optim_wrapper.paramwise_cfg.custom_keys}},
        importance='fisher',  # pull lam_i * w per element
        importance_norm='mean',  # w = F / (F + mean F) within each layer
        fisher_batches={{_base_.optim_wrapper.paramwise_cfg.fisher_batches}},
        fisher_dataloader={{
            _base_.optim_wrapper.paramwise_cfg.fisher_dataloader
        }},
        fisher_model={{_base_.optim_wrapper.paramwise_cfg.fisher_model}},
        fisher_checkpoint={{
            _base_.optim_wrapper.paramwise_cfg.fisher_checkpoint
        }}))
