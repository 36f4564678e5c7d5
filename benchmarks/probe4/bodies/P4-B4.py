# nn.LazyLinear inside the pretrained prefix: groups + optimizer built before the first forward materializes it
import warnings as _w
_w.simplefilter('ignore', UserWarning)   # torch's "Lazy modules are a new feature" warning
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.LazyLinear(6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x))
mA = M()
try:
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
    oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    attach_rollback(oA, setup=g.setup)
except Exception as e:
    msg = str(e)
    if names_any(msg, ['lazy', 'uninitialized', 'materializ']) and names_any(msg, ['forward', 'dry', 'before']):
        verdict('good', f'refused naming lazy parameters and the fix: {msg[:200]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
x0 = torch.randn(5, 4)
mA(x0)               # materialize
mB = copy.deepcopy(mA)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
xs = [torch.randn(5, 4) for _ in range(4)]
try:
    d = drive(mA, oA, mB, rB, xs)
except Exception as e:
    verdict('poor', f'{type(e).__name__} at the first step after materialization: {str(e)[:200]}')
judge_numbers(d, 'LazyLinear materialized at the first forward, theta0 = materialized values')
