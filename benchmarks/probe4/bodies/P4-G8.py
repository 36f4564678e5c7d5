# torch.optim.Adafactor(lr=1e-2) with the rollback vs Adafactor + explicit Eq. 6 lerp (README: "the optimizer (SGD, AdamW, ...)";
# get_started.md development notes: "every optimizer against optimizer + explicit lerp")
optimizer_case('Adafactor', lr=1e-2)
