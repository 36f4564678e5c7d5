# 40 steps, fused AdamW + LinearLR warm-up then cosine (SequentialLR), 13 resumes every 3 steps through files,
# loaded with torch.load(weights_only=True) explicitly; bit-for-bit vs the straight run
def net():
    return nn.Sequential(nn.Linear(5, 8), nn.GELU(), nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.05, rollback_min=0.01)
    o = torch.optim.AdamW(g, lr=3e-3, weight_decay=0.05, fused=True)
    attach_rollback(o, setup=g.setup)
    s = torch.optim.lr_scheduler.SequentialLR(o, [torch.optim.lr_scheduler.LinearLR(o, 0.1, total_iters=6),
                                                  torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=34)], milestones=[6])
    return o, s
import warnings as _w; _w.simplefilter('ignore')
init = net().state_dict()
xs = [torch.randn(6, 5) for _ in range(40)]
mS = net(); mS.load_state_dict(init); oS, sS = build(mS)
for x in xs:
    oS.zero_grad(); mS(x).pow(2).mean().backward(); oS.step(); sS.step()
with tempfile.TemporaryDirectory() as d:
    m = net(); m.load_state_dict(init); o, s = build(m)
    for i, x in enumerate(xs):
        if i > 0 and i % 3 == 0:
            torch.save({'model': m.state_dict(), 'opt': o.state_dict(), 'sched': s.state_dict()}, f'{d}/it{i}.pth')
            try:
                ck = torch.load(f'{d}/it{i}.pth', weights_only=True)
            except Exception as e:
                verdict('poor', f'the optimizer state olor-mm adds is not loadable with torch.load(weights_only=True): {str(e)[:200]}')
            m = net(); o, s = build(m)
            m.load_state_dict(ck['model']); o.load_state_dict(ck['opt']); s.load_state_dict(ck['sched'])
        o.zero_grad(); m(x).pow(2).mean().backward(); o.step(); s.step()
if exact(mS, m):
    verdict('good', '13 resumes (fused AdamW, warm-up + cosine, weights_only loads): bit-identical to the straight run')
verdict('silent', f'13 resumes differ from the straight run by {maxdiff(mS, m):.3e}')
