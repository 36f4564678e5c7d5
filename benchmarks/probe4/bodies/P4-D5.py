# remove() after 3 steps, then attach_rollback(from_current_weights=True): anchors to the current weights on purpose
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
h = attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
xs = [torch.randn(5, 4) for _ in range(6)]
d = drive(mA, oA, mB, rB, xs[:3])
h.remove()
try:
    attach_rollback(oA, setup=g.setup, from_current_weights=True)
except Exception as e:
    verdict('poor', f'from_current_weights=True refused: {type(e).__name__}: {str(e)[:200]}')
rB.theta0 = {p: p.detach().clone() for grp in rB.opt.param_groups for p in grp['params']}
d += drive(mA, oA, mB, rB, xs[3:])
judge_numbers(d, 'remove + attach(from_current_weights=True): new theta0 = the weights at re-attach')
