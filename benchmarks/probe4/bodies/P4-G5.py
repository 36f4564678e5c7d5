# torch.optim.ASGD(lr=0.05, t0=2) with the rollback vs ASGD + explicit Eq. 6 lerp (README: "the optimizer (SGD, AdamW, ...)";
# get_started.md development notes: "every optimizer against optimizer + explicit lerp")
optimizer_case('ASGD', lr=0.05, t0=2)
