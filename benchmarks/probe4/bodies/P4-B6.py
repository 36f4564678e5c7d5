# a module added to the model after the optimizer was built, joined with add_param_group(rollback=0.2) BEFORE the first step
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        h = self.backbone(x)
        if hasattr(self, 'adapter'):
            h = h + self.adapter(h)
        return self.head(h)
mA = M()
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
mA.adapter = nn.Linear(6, 6)
oA.add_param_group(dict(params=list(mA.adapter.parameters()), rollback=0.2))
mB = copy.deepcopy(mA)
gB = twin_groups(g, mA, mB) + [dict(params=list(mB.adapter.parameters()), rollback=0.2)]
rB = Ref(torch.optim.SGD(gB, lr=0.1))
xs = [torch.randn(5, 4) for _ in range(4)]
d = drive(mA, oA, mB, rB, xs)
judge_numbers(d, 'module added + add_param_group(rollback=0.2) before the first step')
