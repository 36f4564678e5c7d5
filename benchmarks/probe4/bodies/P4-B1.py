# a module added to the model mid-training, its params joined with add_param_group(..., rollback=0.3)
# docs (usage.md, theta0...): "A group added with add_param_group(..., rollback=lam) after theta0 is taken
# is anchored to its values when it joins."
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)
        self.extra = None

    def forward(self, x):
        h = self.backbone(x)
        y = self.head(h)
        if self.extra is not None:
            y = y + self.extra(h)
        return y
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
xs = [torch.randn(5, 4) for _ in range(6)]
d = drive(mA, oA, mB, rB, xs[:3])
torch.manual_seed(3); mA.extra = nn.Linear(6, 2)
mB.extra = copy.deepcopy(mA.extra)
oA.add_param_group(dict(params=list(mA.extra.parameters()), rollback=0.3))
rB.opt.add_param_group(dict(params=list(mB.extra.parameters()), rollback=0.3))
for p in mB.extra.parameters():
    rB.theta0[p] = p.detach().clone()
rB.lr0.append(0.1)
d += drive(mA, oA, mB, rB, xs[3:])
judge_numbers(d, 'add_param_group(rollback=0.3) mid-training: new module anchored at join')
