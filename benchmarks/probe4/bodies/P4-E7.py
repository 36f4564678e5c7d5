# resume with the optimizer state loaded BEFORE the model weights (the fresh model still holds a random init
# while the state is loaded); 10 resumes, bit-for-bit vs the straight run
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.2)
    o = torch.optim.RMSprop(g, lr=1e-2, momentum=0.5)
    attach_rollback(o, setup=g.setup)
    return o
init = net().state_dict(); xs = [torch.randn(5, 4) for _ in range(22)]
mS = net(); mS.load_state_dict(init); oS = build(mS)
for x in xs:
    oS.zero_grad(); mS(x).pow(2).mean().backward(); oS.step()
m = net(); m.load_state_dict(init); o = build(m)
for i, x in enumerate(xs):
    if i > 0 and i % 2 == 0:
        ck = copy.deepcopy({'m': m.state_dict(), 'o': o.state_dict()})
        torch.manual_seed(100 + i)
        m = net(); o = build(m)
        o.load_state_dict(ck['o'])        # optimizer first
        m.load_state_dict(ck['m'])        # then the model
    o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
if exact(mS, m):
    verdict('good', '10 resumes loading the optimizer before the model: bit-identical to the straight run')
verdict('silent', f'optimizer-first resumes differ from the straight run by {maxdiff(mS, m):.3e}')
