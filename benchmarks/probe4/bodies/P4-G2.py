# torch.optim.NAdam(lr=1e-2, momentum_decay=4e-3) with the rollback vs NAdam + explicit Eq. 6 lerp (README: "the optimizer (SGD, AdamW, ...)";
# get_started.md development notes: "every optimizer against optimizer + explicit lerp")
optimizer_case('NAdam', lr=1e-2, momentum_decay=4e-3)
