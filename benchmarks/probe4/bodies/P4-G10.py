# maximize=True (gradient ascent): the rollback still pulls toward theta0 by Eq. 6
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x))
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
d = []
oA = torch.optim.AdamW(g, lr=1e-2, maximize=True)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.AdamW(twin_groups(g, mA, mB), lr=1e-2, maximize=True))
d += drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)], loss=lambda out: -out.pow(2).mean())
judge_numbers(d, 'AdamW(maximize=True)')
