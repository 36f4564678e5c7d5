# the same backbone parameters in two optimizers (alternated, e.g. two phases), each attached:
# docs: theta0 of a tensor "is its value just before the optimizer first updates it" -> each optimizer anchors at
# its own first step; each step follows Eq. 6 toward that optimizer's anchor
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mA = net(); mB = copy.deepcopy(mA)
g1 = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
g2 = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.6)
o1 = torch.optim.SGD(g1, lr=0.1); attach_rollback(o1, setup=g1.setup)
o2 = torch.optim.SGD(g2, lr=0.05); attach_rollback(o2, setup=g2.setup)
R1 = Ref(torch.optim.SGD(twin_groups(g1, mA, mB), lr=0.1))
R2 = Ref(torch.optim.SGD(twin_groups(g2, mA, mB), lr=0.05))
d = []
for i in range(6):
    x = torch.randn(5, 4)
    if i % 2 == 0:
        d += drive(mA, o1, mB, R1, [x])
    else:
        d += drive(mA, o2, mB, R2, [x])
judge_numbers(d, 'two optimizers over the same parameters, alternated: each its own anchor')
