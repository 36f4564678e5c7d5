# p.data = pretrained tensor assigned by hand AFTER attach, before the first step (a common way to load weights)
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.5)
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
torch.manual_seed(7)
pre = {n: torch.randn_like(p) for n, p in mA.named_parameters()}
for n, p in mA.named_parameters():
    p.data = pre[n].clone()
x = torch.randn(5, 4)
oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
t0 = theta0_groups(oA)
names = {id(p): n for n, p in mA.named_parameters()}
bad = []
for gi, grp in enumerate(oA.param_groups):
    if t0[gi] is None:
        continue
    for p, t in zip(grp['params'], t0[gi]):
        if not torch.equal(t, pre[names[id(p)]]):
            bad.append(names[id(p)])
if bad:
    verdict('silent', f'theta0 is not the value assigned by p.data = ... before the first step for {bad}')
verdict('good', 'theta0 = the weights assigned by p.data = ... before the first step (docs: value just before the first update)')
