# resume of a model with a LazyLinear: fresh lazy model + optimizer + attach + load_state_dict (before any forward)
import warnings as _w
_w.simplefilter('ignore', UserWarning)
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.LazyLinear(6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x))

def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('backbone',), rollback_max=0.3)
    o = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    attach_rollback(o, setup=g.setup)
    return o
xs = [torch.randn(5, 4) for _ in range(6)]
mS = M(); oS = build(mS)
for x in xs:
    oS.zero_grad(); mS(x).pow(2).mean().backward(); oS.step()
torch.manual_seed(0); xs2 = [torch.randn(5, 4) for _ in range(6)]
mI = M(); oI = build(mI)
for x in xs2[:3]:
    oI.zero_grad(); mI(x).pow(2).mean().backward(); oI.step()
ck = copy.deepcopy({'m': mI.state_dict(), 'o': oI.state_dict()})
mR = M(); oR = build(mR)
try:
    mR.load_state_dict(ck['m'])      # torch materializes lazy params on load
    oR.load_state_dict(ck['o'])
except Exception as e:
    msg = str(e)
    if names_any(msg, ['lazy', 'uninitialized', 'forward', 'shape']):
        verdict('good', f'refused with a message naming the cause: {type(e).__name__}: {msg[:200]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
for x in xs2[3:]:
    oR.zero_grad(); mR(x).pow(2).mean().backward(); oR.step()
for x in xs2[3:]:
    oI.zero_grad(); mI(x).pow(2).mean().backward(); oI.step()
if exact(mI, mR):
    verdict('good', 'lazy model resumed (load_state_dict materializes it): bit-identical to the uninterrupted run')
verdict('silent', f'lazy model resume differs from uninterrupted by {maxdiff(mI, mR):.3e}')
