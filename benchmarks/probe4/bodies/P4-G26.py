# a warm-up written by hand that starts at lr=0 (no scheduler: g['lr'] = base*i/W, i = 0..), scale_with_lr=True.
# docs (usage.md): lr_0 is "its lr when theta0 is taken, or any higher lr since" and "a warm-up written by hand
# roll[s] back with lam_i while the lr climbs above every earlier lr". At lr=0 the update is 0 and so is lam_eff.
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.3)
oA = torch.optim.AdamW(g, lr=1e-2)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.AdamW(twin_groups(g, mA, mB), lr=1e-2))
d = []
W = 4
for i in range(7):
    lr = 1e-2 * min(1.0, i / W)
    for grp in oA.param_groups + rB.opt.param_groups:
        grp['lr'] = lr
    if i == 0:
        rB.take(); rB.lr0 = [0.0] * len(rB.lr0)
    x = torch.randn(5, 4)
    oA.zero_grad(); mA(x).pow(2).mean().backward()
    rB.opt.zero_grad(); mB(x).pow(2).mean().backward()
    try:
        oA.step()
    except Exception as e:
        verdict('poor', f'step {i} (lr={lr}): {type(e).__name__}: {str(e)[:200]}')
    if not all(torch.isfinite(p).all() for p in mA.parameters()):
        verdict('lost', f'weights became NaN/inf at step {i} with lr={lr} (lam * lr / lr_0 with lr_0 = 0?)')
    # reference step with the 0/0 guard
    rB.opt.step()
    with torch.no_grad():
        for k, grp in enumerate(rB.opt.param_groups):
            rB.lr0[k] = max(rB.lr0[k], grp['lr'])
            lam = grp['rollback'] * (grp['lr'] / rB.lr0[k] if rB.lr0[k] > 0 else 0.0)
            if lam > 0:
                for p in grp['params']:
                    if p.grad is not None:
                        p.lerp_(rB.theta0[p], lam)
    d.append(maxdiff(mA, mB))
judge_numbers(d, 'hand warm-up from lr=0: lam_eff = lam_i*lr/lr_0, lr_0 = running max')
