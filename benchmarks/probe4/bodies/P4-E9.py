# a state saved with attach_rollback(opt, setup=groups.setup) resumed into one attached WITHOUT setup (and reverse)
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m, with_setup):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=0.3)
    o = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    attach_rollback(o, setup=g.setup if with_setup else None)
    return o
init = net().state_dict(); xs = [torch.randn(5, 4) for _ in range(6)]
res = []
for a, b in ((True, False), (False, True)):
    mS = net(); mS.load_state_dict(init); oS = build(mS, a)
    for x in xs:
        oS.zero_grad(); mS(x).pow(2).mean().backward(); oS.step()
    m = net(); m.load_state_dict(init); o = build(m, a)
    for x in xs[:3]:
        o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
    ck = copy.deepcopy({'m': m.state_dict(), 'o': o.state_dict()})
    mR = net(); oR = build(mR, b); mR.load_state_dict(ck['m'])
    try:
        oR.load_state_dict(ck['o'])
    except Exception as e:
        msg = str(e)
        if names_any(msg, ['setup']):
            res.append(f'refused with setup={a}->{b}, naming setup')
            continue
        verdict('poor', f'setup={a} -> {b}: {type(e).__name__}: {msg[:200]}')
    for x in xs[3:]:
        oR.zero_grad(); mR(x).pow(2).mean().backward(); oR.step()
    if not exact(mS, mR):
        verdict('silent', f'setup={a} -> {b}: resumed run differs by {maxdiff(mS, mR):.3e}')
    res.append(f'setup={a}->{b} bit-identical')
verdict('good', 'docs silent; ' + '; '.join(res))
