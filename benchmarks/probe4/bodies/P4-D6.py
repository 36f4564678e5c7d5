# handle.remove(): later steps are the plain optimizer's (no lerp), find_rollback() says None
from olor_mm import find_rollback
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
h = attach_rollback(oA, setup=g.setup)
if find_rollback(oA) is not h:
    verdict('silent', 'find_rollback does not return the attached handle')
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
xs = [torch.randn(5, 4) for _ in range(6)]
d = drive(mA, oA, mB, rB, xs[:3])
h.remove()
if find_rollback(oA) is not None:
    verdict('silent', 'find_rollback still returns a handle after remove()')
for grp in rB.opt.param_groups:
    grp['rollback'] = 0.0          # the reference stops rolling back
try:
    d += drive(mA, oA, mB, rB, xs[3:])
except Exception as e:
    verdict('poor', f'stepping after remove(): {type(e).__name__}: {str(e)[:200]}')
judge_numbers(d, 'after remove(): plain SGD, no rollback')
