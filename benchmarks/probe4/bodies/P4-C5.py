# shared module under BOTH pretrained prefixes ('backbone', 'neck'): once in the groups, Eq. 6 with its group's lam
class M(nn.Module):
    def __init__(self):
        super().__init__()
        sh = nn.Linear(6, 6)
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), sh, nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.neck = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), sh, nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.neck(self.backbone(x)))
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone', 'neck'), rollback_max=0.5)
ids = [id(p) for grp in g for p in grp['params']]
uniq = {id(p) for p in mA.parameters()}
if len(ids) != len(set(ids)) or set(ids) != uniq:
    verdict('silent', f'groups list {len(ids)} tensors, {len(set(ids))} distinct, model has {len(uniq)}')
lam = [grp['rollback'] for grp in g if any(p is mA.backbone[2].weight for p in grp['params'])][0]
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9, nesterov=True))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
judge_numbers(d, f'module shared by two pretrained prefixes: once, lam={lam}')
