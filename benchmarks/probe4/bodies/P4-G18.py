# nn.utils.parametrizations.orthogonal on a backbone layer (the trained tensor is the unconstrained original)
from torch.nn.utils.parametrizations import orthogonal
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), orthogonal(nn.Linear(6, 6)), nn.Tanh(),
                                      nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x))
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
judge_numbers(d, 'orthogonal parametrization', tol=1e-6)
