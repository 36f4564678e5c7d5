# attach_rollback twice to the same optimizer: either refused with a clear message, or idempotent (one lerp per step)
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1)
h1 = attach_rollback(oA, setup=g.setup)
try:
    h2 = attach_rollback(oA, setup=g.setup)
except Exception as e:
    msg = str(e)
    if names_any(msg, ['already', 'twice', 'attached']):
        verdict('good', f'second attach refused: {type(e).__name__}: {msg[:200]}')
    verdict('poor', f'second attach raised without naming the cause: {type(e).__name__}: {msg[:200]}')
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(3)])
d0 = max(d)
if d0 == 0:
    verdict('good', f'second attach accepted and idempotent (same handle: {h1 is h2}); one lerp per step, Eq. 6 exact')
# double lerp?
verdict('silent', f'attached twice: weights off Eq. 6 by {d0:.3e} (rolled back twice per step?)')
