# torch.optim.Adamax(lr=1e-2) with the rollback vs Adamax + explicit Eq. 6 lerp (README: "the optimizer (SGD, AdamW, ...)";
# get_started.md development notes: "every optimizer against optimizer + explicit lerp")
optimizer_case('Adamax', lr=1e-2)
