# a bfloat16 submodule beside float32 ones; the reference (Ref) does the documented float32 lerp with the rounding carried
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6).to(torch.bfloat16), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        h = torch.tanh(self.backbone[0](x)).bfloat16()
        h = torch.tanh(self.backbone[2](h)).float()
        return self.head(torch.tanh(self.backbone[4](h)))
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.AdamW(g, lr=1e-2)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.AdamW(twin_groups(g, mA, mB), lr=1e-2))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
if mA.backbone[2].weight.dtype != torch.bfloat16:
    verdict('silent', f'bf16 param became {mA.backbone[2].weight.dtype}')
judge_numbers(d, 'bfloat16 submodule beside float32 (AdamW)', tol=0.0)
