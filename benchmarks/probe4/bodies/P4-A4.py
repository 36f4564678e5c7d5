# a parameter that is a transposed (non-contiguous) view: nn.Parameter(w.t())
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.w1 = nn.Parameter(torch.randn(3, 5).t())     # (5,3), non-contiguous
        self.backbone.w2 = nn.Parameter(torch.randn(4, 4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.tanh(torch.tanh(x @ self.backbone.w1) @ self.backbone.w2[:3]))
mA = M()
assert not mA.backbone.w1.is_contiguous()
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3,
                              layer_patterns=[r'^w(\d+)$'])
oA = torch.optim.SGD(g, lr=0.1, momentum=0.5)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.5))
xs = [torch.randn(6, 5) for _ in range(4)]
try:
    diffs = drive(mA, oA, mB, rB, xs)
except Exception as e:
    verdict('poor', f'raised {type(e).__name__}: {str(e)[:150]}')
judge_numbers(diffs, 'non-contiguous (transposed) parameter')
