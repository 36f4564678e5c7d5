# one nn.Module instance registered as backbone.shared and neck.shared (pretrained_prefixes=('backbone',))
# docs (usage.md, theta0): "A tensor shared by several modules (tied weights) is in one group, updated once,
# and rolls back if any of its names is pretrained."
class M(nn.Module):
    def __init__(self):
        super().__init__()
        sh = nn.Linear(6, 6)
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), sh, nn.Tanh())
        self.neck = nn.Sequential(sh, nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.neck(self.backbone(x)))
mA = M(); mB = copy.deepcopy(mA)
assert mB.backbone[2] is mB.neck[0]
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.4, rollback_min=0.2)
allp = [p for grp in g for p in grp['params']]
cnt = sum(1 for p in allp if p is mA.backbone[2].weight)
lam = [grp['rollback'] for grp in g if any(p is mA.backbone[2].weight for p in grp['params'])]
if cnt != 1:
    verdict('silent', f'the shared weight is listed {cnt} times in the groups')
if not lam or lam[0] <= 0:
    verdict('silent', f'the shared weight (pretrained name backbone.2.weight) gets lam {lam}, not rolled back')
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
judge_numbers(d, f'module shared by backbone and neck: once, lam={lam[0]}')
