# attach_rollback(scale_with_lr=False) under a CosineAnnealingLR: lam_eff = lam_i at every step (no lr coupling)
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
h = attach_rollback(oA, setup=g.setup, scale_with_lr=False)
sA = torch.optim.lr_scheduler.CosineAnnealingLR(oA, T_max=6)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9), scale_with_lr=False)
sB = torch.optim.lr_scheduler.CosineAnnealingLR(rB.opt, T_max=6)
d = []
for _ in range(6):
    d += drive(mA, oA, mB, rB, [torch.randn(5, 4)]); sA.step(); sB.step()
le = h.lam_effs()
if any(abs(l - grp['rollback']) > 1e-12 for l, grp in zip(le, oA.param_groups)):
    verdict('silent', f'scale_with_lr=False but lam_effs() {le} != lam_i {[grp["rollback"] for grp in oA.param_groups]}')
judge_numbers(d, 'scale_with_lr=False under cosine lr: lam_eff = lam_i')
