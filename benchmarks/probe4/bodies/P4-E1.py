# 36 steps, SGD momentum + StepLR, torch.save(model+opt+sched) every 3 steps and a reload into freshly built
# model/optimizer/scheduler + attach_rollback each time (12 resumes, torch.load defaults), vs the straight run
def net():
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 16, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), exclude=('7',), rollback_max=0.1,
                                  pretrained_options=dict(weight_decay=0.0))
    o = torch.optim.SGD(g, lr=0.05, momentum=0.9, weight_decay=1e-3)
    attach_rollback(o, setup=g.setup)
    s = torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.7)
    return o, s
torch.manual_seed(0)
init = net().state_dict()
xs = [torch.randn(4, 3, 4, 4) for _ in range(36)]
mS = net(); mS.load_state_dict(init); oS, sS = build(mS)
for x in xs:
    oS.zero_grad(); mS(x).pow(2).mean().backward(); oS.step(); sS.step()
with tempfile.TemporaryDirectory() as d:
    path = f'{d}/last.pth'
    m = net(); m.load_state_dict(init); o, s = build(m)
    for i, x in enumerate(xs):
        if i > 0 and i % 3 == 0:
            torch.save({'model': m.state_dict(), 'opt': o.state_dict(), 'sched': s.state_dict()}, path)
            del m, o, s
            ck = torch.load(path)
            m = net(); o, s = build(m)
            m.load_state_dict(ck['model']); o.load_state_dict(ck['opt']); s.load_state_dict(ck['sched'])
        o.zero_grad(); m(x).pow(2).mean().backward(); o.step(); s.step()
t0 = theta0_groups(o)[0]
first = [p for p in o.param_groups[0]['params']]
names = {id(p): n for n, p in m.named_parameters()}
if not all(torch.equal(t, init[names[id(p)]]) for t, p in zip(t0, first)):
    verdict('lost', 'after 11 resumes theta0 is no longer the initial (pretrained) weights')
if exact(mS, m):
    verdict('good', '11 save/reload cycles (SGD+StepLR): bit-identical to the straight 36 steps; theta0 intact')
verdict('silent', f'11 resumes differ from the straight run by {maxdiff(mS, m):.3e}')
