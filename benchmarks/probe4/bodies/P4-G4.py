# torch.optim.Rprop(lr=1e-2) with the rollback vs Rprop + explicit Eq. 6 lerp (README: "the optimizer (SGD, AdamW, ...)";
# get_started.md development notes: "every optimizer against optimizer + explicit lerp")
optimizer_case('Rprop', lr=1e-2)
