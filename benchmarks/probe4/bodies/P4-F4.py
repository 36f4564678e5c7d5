# anchor_dtype='float64' on float32 params (a wider anchor): accepted and exact, or refused clearly
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.5)
oA = torch.optim.SGD(g, lr=0.1)
try:
    attach_rollback(oA, setup=g.setup, anchor_dtype=torch.float64)
except Exception as e:
    msg = str(e)
    if names_any(msg, ['anchor_dtype']):
        verdict('good', f'refused naming anchor_dtype: {msg[:200]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1))
try:
    d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
except Exception as e:
    verdict('poor', f'float64 anchor crashed at the step: {type(e).__name__}: {str(e)[:200]}')
dts = {t.dtype for l in theta0_groups(oA) if l for t in l}
if mA[0].weight.dtype != torch.float32:
    verdict('silent', f'float64 anchor changed the parameter dtype to {mA[0].weight.dtype}')
judge_numbers(d, f'anchor_dtype=float64 on float32 params (theta0 {dts})', tol=1e-7)
