# shared module registered first under a NON-pretrained name (backbone.*), second under the pretrained prefix ('neck',):
# named_parameters() only yields the first name; docs: "rolls back if any of its names is pretrained"
class M(nn.Module):
    def __init__(self):
        super().__init__()
        sh = nn.Linear(6, 6)
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), sh, nn.Tanh())
        self.neck = nn.Sequential(sh, nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.neck(self.backbone(x)))
mA = M(); mB = copy.deepcopy(mA)
try:
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('neck',), rollback_max=0.4, rollback_min=0.2)
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
lam = [grp['rollback'] for grp in g if any(p is mA.neck[0].weight for p in grp['params'])]
cnt = sum(1 for grp in g for p in grp['params'] if p is mA.neck[0].weight)
if cnt != 1 or not lam or lam[0] <= 0:
    verdict('silent', f'shared weight whose 2nd name neck.0.weight is pretrained: listed {cnt}x, lam {lam} (docs: rolls back if any of its names is pretrained)')
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(3)])
judge_numbers(d, f'shared module whose pretrained name comes second: lam={lam[0]}')
