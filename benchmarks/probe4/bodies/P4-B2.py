# add_param_group WITHOUT a rollback key mid-training: the new group trains plainly, the others keep Eq. 6
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)
        self.extra = nn.Linear(6, 2)

    def forward(self, x):
        h = self.backbone(x)
        return self.head(h) + self.extra(h)
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3, exclude=mA.extra)
g = [grp if grp['layer_id'] is not None else dict(grp, params=[p for p in grp['params'] if all(p is not q for q in mA.extra.parameters())]) for grp in g]
oA = torch.optim.Adam(g, lr=1e-2)
attach_rollback(oA)
rB = Ref(torch.optim.Adam(twin_groups(g, mA, mB), lr=1e-2))
xs = [torch.randn(5, 4) for _ in range(6)]
d = drive(mA, oA, mB, rB, xs[:2])
try:
    oA.add_param_group(dict(params=list(mA.extra.parameters()), lr=5e-3))
except Exception as e:
    verdict('poor', f'add_param_group without rollback refused: {type(e).__name__}: {str(e)[:160]}')
rB.opt.add_param_group(dict(params=list(mB.extra.parameters()), lr=5e-3))
rB.lr0.append(5e-3)
d += drive(mA, oA, mB, rB, xs[2:])
judge_numbers(d, 'add_param_group without rollback mid-training')
