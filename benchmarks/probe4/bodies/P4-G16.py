# nn.utils.parametrizations.weight_norm on backbone layers: the trained tensors are
# parametrizations.weight.original0/original1; Eq. 6 on them
from torch.nn.utils.parametrizations import weight_norm
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(weight_norm(nn.Linear(4, 6)), nn.Tanh(), weight_norm(nn.Linear(6, 6)), nn.Tanh(),
                                      weight_norm(nn.Linear(6, 6)), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x))
mA = M(); mB = copy.deepcopy(mA)
try:
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
table = [(grp['layer_id'], round(grp['rollback'], 3), len(grp['params'])) for grp in g]
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
judge_numbers(d, f'weight_norm parametrization (layers {table})')
