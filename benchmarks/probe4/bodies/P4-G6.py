# torch.optim.Adadelta(lr=1.0) with the rollback vs Adadelta + explicit Eq. 6 lerp (README: "the optimizer (SGD, AdamW, ...)";
# get_started.md development notes: "every optimizer against optimizer + explicit lerp")
optimizer_case('Adadelta', lr=1.0)
