# zero_grad(set_to_none=False): a pretrained layer used at step 1 but skipped at steps 2-3 keeps a zero gradient
# (not None); torch's SGD-momentum still moves it. docs: the rollback runs "only on tensors that got a gradient in
# that update". Reference: a tensor with p.grad is not None got one (torch's own test for updating it).
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.side = nn.Linear(4, 6)
        self.head = nn.Linear(6, 2)
        self.use_side = True

    def forward(self, x):
        h = self.backbone(x)
        if self.use_side:
            h = h + self.side(x)
        return self.head(h)
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('side', 'backbone'), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
xs = [torch.randn(5, 4) for _ in range(3)]
d = drive(mA, oA, mB, rB, xs[:1], zero_kw=dict(set_to_none=False))
mA.use_side = mB.use_side = False
d += drive(mA, oA, mB, rB, xs[1:], zero_kw=dict(set_to_none=False))
if max(d) > 0:
    # would it match "no rollback on zero-grad tensors"?
    verdict('silent', f'with set_to_none=False a tensor with a zero gradient (moved by momentum) is off the reference by {max(d):.3e}')
judge_numbers(d, 'zero_grad(set_to_none=False): zero-gradient tensor moved by momentum and rolled back')
