# complex parameters (complex64), which torch's SGD/Adam support: Eq. 6 on complex values, or a clear refusal
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.w1 = nn.Parameter(torch.randn(4, 4, dtype=torch.complex64))
        self.backbone.w2 = nn.Parameter(torch.randn(4, 4, dtype=torch.complex64))
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        h = (x.to(torch.complex64) @ self.backbone.w1) @ self.backbone.w2
        return self.head(h.abs())
mA = M(); mB = copy.deepcopy(mA)
try:
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.4, layer_patterns=[r'^w(\d+)$'])
    oA = torch.optim.Adam(g, lr=1e-2)
    attach_rollback(oA, setup=g.setup)
except Exception as e:
    msg = str(e)
    if names_any(msg, ['complex']):
        verdict('good', f'refused naming complex: {msg[:200]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
rB = Ref(torch.optim.Adam(twin_groups(g, mA, mB), lr=1e-2))
try:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(3)])
except Exception as e:
    msg = str(e)
    if names_any(msg, ['complex']) and names_any(msg, ['olor', 'theta0', 'rollback']):
        verdict('good', f'refused at the step naming complex: {msg[:200]}')
    verdict('poor', f'{type(e).__name__} at {os.path.basename(innermost(e))}: {msg[:200]}')
pB = dict(mB.named_parameters())
dc = max((p.detach() - pB[n].detach()).abs().max().item() for n, p in mA.named_parameters())
judge_numbers([dc], 'complex64 parameters, Adam, 3 steps (complex difference, real and imaginary parts)')
