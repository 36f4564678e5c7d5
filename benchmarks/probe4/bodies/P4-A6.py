# p.data replaced during training (same shape, e.g. a manual weight re-normalisation by assignment)
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup)
mB = copy.deepcopy(mA)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
xs = [torch.randn(5, 4) for _ in range(6)]
d1 = drive(mA, oA, mB, rB, xs[:3])
# replace .data with a new tensor (new storage), same values * 0.9, on both
for m in (mA, mB):
    m[0].weight.data = m[0].weight.data.clone() * 0.9
d2 = drive(mA, oA, mB, rB, xs[3:])
judge_numbers(d1 + d2, 'p.data = new tensor mid-training (theta0 stays the first-step value)')
