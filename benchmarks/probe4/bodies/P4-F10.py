# float16 parameters (a .half() submodule, CPU) with anchor_dtype='bfloat16': theta0 rounded to bf16, param fp16
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6).half(), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        h = torch.tanh(self.backbone[0](x.half())).float()
        return self.head(torch.tanh(self.backbone[4](torch.tanh(self.backbone[2](h)))))
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.5)
oA = torch.optim.SGD(g, lr=0.1)
try:
    attach_rollback(oA, setup=g.setup, anchor_dtype='bfloat16')
    rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1), anchor_dtype=torch.bfloat16)
    d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(3)])
except Exception as e:
    verdict('poor', f'{type(e).__name__} at {os.path.basename(innermost(e))}: {str(e)[:200]}')
if mA.backbone[0].weight.dtype != torch.float16:
    verdict('silent', f'fp16 param became {mA.backbone[0].weight.dtype}')
judge_numbers(d, "fp16 params + fp32 params with anchor_dtype='bfloat16'", tol=1e-3)
