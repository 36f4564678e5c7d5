# a strided-view parameter (every other column of a bigger tensor) + resume through state_dict
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        base = torch.randn(4, 8)
        self.backbone.w = nn.Parameter(base[:, ::2])     # (4,4) stride (8,2)
        self.backbone.v = nn.Parameter(torch.randn(4, 4))
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(torch.tanh(torch.tanh(x @ self.backbone.w) @ self.backbone.v))
mA = M()
assert mA.backbone.w.stride() == (8, 2)
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.4,
                              layer_patterns=[(r'^w$', (0,)), (r'^v$', (1,))])
oA = torch.optim.Adam(g, lr=1e-2)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.Adam(twin_groups(g, mA, mB), lr=1e-2))
xs = [torch.randn(6, 4) for _ in range(3)]
diffs = drive(mA, oA, mB, rB, xs)
t0 = theta0_groups(oA)[0][0]
if t0.stride() != (4, 1) and not t0.is_contiguous():
    pass
judge_numbers(diffs, 'strided-view parameter (stride (8,2)), Adam')
