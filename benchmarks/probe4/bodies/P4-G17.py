# nn.utils.parametrizations.spectral_norm (buffers u, v updated in forward) on backbone layers
from torch.nn.utils.parametrizations import spectral_norm
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(spectral_norm(nn.Linear(4, 6)), nn.Tanh(), spectral_norm(nn.Linear(6, 6)), nn.Tanh(),
                                      nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x))
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.Adam(g, lr=1e-2)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.Adam(twin_groups(g, mA, mB), lr=1e-2))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
judge_numbers(d, 'spectral_norm parametrization')
