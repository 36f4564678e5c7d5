# add_param_group(rollback=0.4) mid-training with its own lr, under a StepLR schedule (scale_with_lr):
# lam_eff of the new group = 0.4 * lr_t / lr_0, lr_0 = its lr when it joined (docs: "else its lr when theta0 is taken")
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)
        self.extra = nn.Linear(6, 2)

    def forward(self, x):
        h = self.backbone(x)
        return self.head(h) + self.extra(h)
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3, exclude=('extra',))
g = [dict(grp, params=[p for p in grp['params'] if all(p is not q for q in mA.extra.parameters())]) for grp in g]
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup if hasattr(g, 'setup') else None)
sA = torch.optim.lr_scheduler.StepLR(oA, step_size=2, gamma=0.5)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1))
sB = torch.optim.lr_scheduler.StepLR(rB.opt, step_size=2, gamma=0.5)
xs = [torch.randn(5, 4) for _ in range(8)]
d = []
for i, x in enumerate(xs):
    if i == 3:
        oA.add_param_group(dict(params=list(mA.extra.parameters()), rollback=0.4, lr=0.05))
        rB.opt.add_param_group(dict(params=list(mB.extra.parameters()), rollback=0.4, lr=0.05))
        for p in mB.extra.parameters():
            rB.theta0[p] = p.detach().clone()
        rB.lr0.append(0.05)
    d += drive(mA, oA, mB, rB, [x])
    sA.step(); sB.step()
judge_numbers(d, 'group added mid-run under StepLR: lam_eff = lam * lr_t / lr_at_join')
