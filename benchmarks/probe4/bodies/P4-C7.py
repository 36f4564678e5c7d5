# shared submodule + resume: 10 steps straight vs 5 + save/load into fresh model/optimizer + 5
class M(nn.Module):
    def __init__(self):
        super().__init__()
        sh = nn.Linear(6, 6)
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), sh, nn.Tanh())
        self.neck = nn.Sequential(sh, nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.neck(self.backbone(x)))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('backbone',), rollback_max=0.3)
    o = torch.optim.Adam(g, lr=1e-2)
    attach_rollback(o, setup=g.setup)
    return o
m0 = M(); init = copy.deepcopy(m0.state_dict())
xs = [torch.randn(5, 4) for _ in range(10)]
mS = M(); mS.load_state_dict(init); oS = build(mS)
for x in xs:
    oS.zero_grad(); mS(x).pow(2).mean().backward(); oS.step()
mI = M(); mI.load_state_dict(init); oI = build(mI)
for x in xs[:5]:
    oI.zero_grad(); mI(x).pow(2).mean().backward(); oI.step()
with tempfile.TemporaryDirectory() as d:
    torch.save({'model': mI.state_dict(), 'opt': oI.state_dict()}, f'{d}/ck.pth')
    ck = torch.load(f'{d}/ck.pth')
mR = M(); mR.load_state_dict(ck['model']); oR = build(mR); oR.load_state_dict(ck['opt'])
for x in xs[5:]:
    oR.zero_grad(); mR(x).pow(2).mean().backward(); oR.step()
if exact(mS, mR) and mR.backbone[2] is mR.neck[0]:
    verdict('good', 'shared module: resumed run bit-identical to the uninterrupted one')
verdict('silent', f'shared-module resume differs by {maxdiff(mS, mR):.3e}')
