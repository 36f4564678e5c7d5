# a new parameter appended straight into an existing rolled-back group (opt.param_groups[0]['params'].append(p)),
# the way some code extends an optimizer instead of add_param_group. docs: "theta0 covers every parameter of the
# rolled-back groups". Acceptable: Eq. 6 toward its value when it joined, or a clear refusal.
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)
        self.scale = None

    def forward(self, x):
        h = self.backbone(x)
        if self.scale is not None:
            h = h * self.scale
        return self.head(h)
mA = M()
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.4)
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
x = torch.randn(5, 4)
for _ in range(2):
    oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
mA.scale = nn.Parameter(torch.full((6,), 1.5))
s0 = mA.scale.detach().clone()
oA.param_groups[0]['params'].append(mA.scale)
lam = oA.param_groups[0]['rollback']
oA.zero_grad(); mA(x).pow(2).mean().backward()
hat = mA.scale.detach() - 0.1 * mA.scale.grad
try:
    oA.step()
except Exception as e:
    msg = str(e)
    if names_any(msg, ['add_param_group', 'theta0', 'anchor', 'not anchored', 'joined']):
        verdict('good', f'refused naming the cause: {type(e).__name__}: {msg[:200]}')
    verdict('poor', f'{type(e).__name__} at {os.path.basename(innermost(e))}: {msg[:200]}')
if torch.allclose(mA.scale.detach(), torch.lerp(hat, s0, lam), atol=1e-7, rtol=0):
    verdict('good', 'a tensor appended to a rolled-back group is anchored at its join value (Eq. 6)')
if torch.equal(mA.scale.detach(), hat):
    verdict('silent', f'a tensor appended to a rolled-back group (lam={lam}) trains without any rollback and without a word (docs: theta0 covers every parameter of the rolled-back groups)')
verdict('silent', f'appended tensor off both: {mA.scale.detach().tolist()}')
