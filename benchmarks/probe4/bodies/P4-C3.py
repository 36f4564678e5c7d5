# weight tying between a pretrained embedding (backbone.emb) and a new head (head.weight), head excluded by module;
# pretrained_options=dict(weight_decay=0.0). docs: tied tensor "rolls back if any of its names is pretrained";
# pretrained_options "adds options to the pretrained groups"
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.emb = nn.Embedding(10, 6)
        self.backbone.mlp = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.backbone.emb.weight     # tied

    def forward(self, x):
        return self.head(self.backbone.mlp(self.backbone.emb(x)))
mA = M(); mB = copy.deepcopy(mA)
assert mB.head.weight is mB.backbone.emb.weight
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), exclude=mA.head, rollback_max=0.3,
                              pretrained_options=dict(weight_decay=0.0),
                              layer_patterns=[(r'^emb\.', (0,)), r'^mlp\.(\d+)\.'])
gr = [grp for grp in g if any(p is mA.backbone.emb.weight for p in grp['params'])]
cnt = sum(1 for grp in g for p in grp['params'] if p is mA.backbone.emb.weight)
if cnt != 1:
    verdict('silent', f'tied weight listed {cnt} times')
if gr[0]['rollback'] <= 0 or gr[0].get('weight_decay', None) != 0.0:
    verdict('silent', f"tied pretrained weight: rollback={gr[0]['rollback']}, weight_decay={gr[0].get('weight_decay')} (expected >0 and 0.0)")
oA = torch.optim.AdamW(g, lr=1e-2, weight_decay=0.05)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.AdamW(twin_groups(g, mA, mB), lr=1e-2, weight_decay=0.05))
xs = [torch.randint(0, 10, (7,)) for _ in range(4)]
d = drive(mA, oA, mB, rB, xs)
judge_numbers(d, f"tied embedding/head weight: pretrained group, lam={gr[0]['rollback']}, wd 0")
