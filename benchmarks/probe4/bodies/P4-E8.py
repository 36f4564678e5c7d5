# OneCycleLR (lr climbs above initial_lr then decays) with the scheduler restored, 7 resumes, vs straight run
# AND vs the closed form (lr_0 = the largest lr seen, docs usage.md theta0 section)
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=0.3)
    o = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    attach_rollback(o, setup=g.setup)
    s = torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.3, total_steps=15)
    return o, s
init = net().state_dict(); xs = [torch.randn(5, 4) for _ in range(15)]
mS = net(); mS.load_state_dict(init); oS, sS = build(mS)
mB = net(); mB.load_state_dict(init)
gB = twin_groups(layerwise_rollback_groups(mS, pretrained_prefixes=('',), rollback_max=0.3), mS, mB)
rB = Ref(torch.optim.SGD(gB, lr=0.1, momentum=0.9)); sB = torch.optim.lr_scheduler.OneCycleLR(rB.opt, max_lr=0.3, total_steps=15)
d = []
for x in xs:
    d += drive(mS, oS, mB, rB, [x]); sS.step(); sB.step()
m = net(); m.load_state_dict(init); o, s = build(m)
for i, x in enumerate(xs):
    if i > 0 and i % 2 == 0:
        ck = copy.deepcopy({'m': m.state_dict(), 'o': o.state_dict(), 's': s.state_dict()})
        m = net(); o, s = build(m); m.load_state_dict(ck['m']); o.load_state_dict(ck['o']); s.load_state_dict(ck['s'])
    o.zero_grad(); m(x).pow(2).mean().backward(); o.step(); s.step()
if not exact(mS, m):
    verdict('silent', f'OneCycle with 7 resumes differs from the straight run by {maxdiff(mS, m):.3e}')
judge_numbers(d, 'OneCycleLR straight run vs closed form (lr_0 = peak lr); 7 resumes bit-identical to it')
