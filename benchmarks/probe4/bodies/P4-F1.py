# a model with float64 and float32 parameters (one layer .double(), casts in forward); theta0 kept per dtype
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6).double(), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        h = torch.tanh(self.backbone[0](x)).double()
        h = torch.tanh(self.backbone[2](h)).float()
        return self.head(torch.tanh(self.backbone[4](h)))
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
t0 = theta0_groups(oA)
dts = sorted({str(t.dtype) for l in t0 if l for t in l})
if mA.backbone[2].weight.dtype != torch.float64 or dts != ['torch.float32', 'torch.float64']:
    verdict('silent', f'dtypes changed: param {mA.backbone[2].weight.dtype}, theta0 dtypes {dts}')
judge_numbers(d, f'float64 + float32 parameters (theta0 dtypes {dts})')
