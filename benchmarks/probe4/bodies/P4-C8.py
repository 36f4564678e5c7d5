# the same block instance applied twice inside the backbone (ModuleList([blk, blk]), weight sharing across depth)
class Blk(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 6); self.b = nn.Linear(6, 6)

    def forward(self, x):
        return x + self.b(torch.tanh(self.a(x)))
class M(nn.Module):
    def __init__(self):
        super().__init__()
        blk = Blk()
        self.backbone = nn.Module()
        self.backbone.stem = nn.Linear(4, 6)
        self.backbone.blocks = nn.ModuleList([Blk(), blk, blk, Blk()])
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        h = self.backbone.stem(x)
        for b in self.backbone.blocks:
            h = torch.tanh(b(h))
        return self.head(h)
mA = M(); mB = copy.deepcopy(mA)
try:
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.4)
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
ids = [id(p) for grp in g for p in grp['params']]
if len(ids) != len(set(ids)) or set(ids) != {id(p) for p in mA.parameters()}:
    verdict('silent', f'groups list {len(ids)} tensors, {len(set(ids))} distinct')
table = [(grp['layer_id'], grp['rollback'], len(grp['params'])) for grp in g]
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
judge_numbers(d, f'one block instance used at two depths: each tensor once; layers {table}')
