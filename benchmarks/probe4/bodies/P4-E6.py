# a never-stepped state resumed, compared bit-for-bit with the uninterrupted run (save at step 0, then 6 steps)
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=0.3)
    o = torch.optim.AdamW(g, lr=1e-2)
    attach_rollback(o, setup=g.setup)
    s = torch.optim.lr_scheduler.LinearLR(o, start_factor=0.5, total_iters=4)
    return o, s
init = net().state_dict(); xs = [torch.randn(5, 4) for _ in range(6)]
mS = net(); mS.load_state_dict(init); oS, sS = build(mS)
for x in xs:
    oS.zero_grad(); mS(x).pow(2).mean().backward(); oS.step(); sS.step()
m = net(); m.load_state_dict(init); o, s = build(m)
with tempfile.TemporaryDirectory() as d:
    torch.save({'m': m.state_dict(), 'o': o.state_dict(), 's': s.state_dict()}, f'{d}/ck0.pth')
    ck = torch.load(f'{d}/ck0.pth')
mR = net(); oR, sR = build(mR)
try:
    mR.load_state_dict(ck['m']); oR.load_state_dict(ck['o']); sR.load_state_dict(ck['s'])
    for x in xs:
        oR.zero_grad(); mR(x).pow(2).mean().backward(); oR.step(); sR.step()
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
if exact(mS, mR):
    verdict('good', 'resume of a state saved before the first step: bit-identical to the straight run')
verdict('silent', f'resume of a never-stepped state differs by {maxdiff(mS, mR):.3e}')
