# two models, two optimizers, each with attach_rollback, stepped interleaved; each follows its own Eq. 6,
# their state dicts carry their own theta0 and run ids
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
m1 = net(); m2 = net(); r1 = copy.deepcopy(m1); r2 = copy.deepcopy(m2)
init1 = [p.detach().clone() for p in m1.parameters()]; init2 = [p.detach().clone() for p in m2.parameters()]
g1 = layerwise_rollback_groups(m1, pretrained_prefixes=('',), rollback_max=0.3)
g2 = layerwise_rollback_groups(m2, pretrained_prefixes=('',), rollback_max=0.6, rollback_power=2.0)
o1 = torch.optim.SGD(g1, lr=0.1, momentum=0.9); h1 = attach_rollback(o1, setup=g1.setup)
o2 = torch.optim.AdamW(g2, lr=1e-2); h2 = attach_rollback(o2, setup=g2.setup)
R1 = Ref(torch.optim.SGD(twin_groups(g1, m1, r1), lr=0.1, momentum=0.9))
R2 = Ref(torch.optim.AdamW(twin_groups(g2, m2, r2), lr=1e-2))
d = []
for i in range(5):
    x = torch.randn(5, 4)
    d += drive(m1, o1, r1, R1, [x])
    d += drive(m2, o2, r2, R2, [x * 2])
s1, s2 = o1.state_dict(), o2.state_dict()
if s1['olor_rollback']['run_id'] == s2['olor_rollback']['run_id']:
    verdict('silent', 'two optimizers share one run id')
for sd, m, init in ((s1, m1, init1), (s2, m2, init2)):
    pos = {id(p): i for i, p in enumerate(m.parameters())}
    o = o1 if m is m1 else o2
    for gi, grp in enumerate(o.param_groups):
        t0 = sd['param_groups'][gi].get('olor_rollback.theta0')
        if t0 is None:
            continue
        for p, t in zip(grp['params'], t0):
            if not torch.equal(t, init[pos[id(p)]]):
                verdict('silent', 'a state dict carries the other model\'s theta0 (or not its own)')
judge_numbers(d, 'two models / two optimizers with their own anchors, interleaved')
