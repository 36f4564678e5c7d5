# torch.optim.RAdam(lr=1e-2, weight_decay=1e-2, decoupled_weight_decay=True) with the rollback vs RAdam + explicit Eq. 6 lerp (README: "the optimizer (SGD, AdamW, ...)";
# get_started.md development notes: "every optimizer against optimizer + explicit lerp")
optimizer_case('RAdam', lr=1e-2, weight_decay=1e-2, decoupled_weight_decay=True)
