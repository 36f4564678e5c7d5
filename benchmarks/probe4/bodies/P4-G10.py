# maximize=True (gradient ascent): the rollback still pulls toward theta0 by Eq. 6
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
d = []
oA = torch.optim.AdamW(g, lr=1e-2, maximize=True)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.AdamW(twin_groups(g, mA, mB), lr=1e-2, maximize=True))
d += drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)], loss=lambda out: -out.pow(2).mean())
judge_numbers(d, 'AdamW(maximize=True)')
