# anchor_dtype='bfloat16' on float32 params: theta0 held in bf16, the rollback pulls toward theta0 rounded to bf16
# (performance.md: "the rollback pulls toward theta0 rounded to bfloat16's 8 bits")
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.5)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup, anchor_dtype='bfloat16')
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9), anchor_dtype=torch.bfloat16)
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(5)])
t0 = theta0_groups(oA)
dts = {t.dtype for l in t0 if l for t in l}
if dts != {torch.bfloat16}:
    verdict('silent', f'anchor_dtype=bfloat16 but theta0 saved as {dts}')
# how far is this from a float32 anchor? (so the comparison is meaningful)
judge_numbers(d, "anchor_dtype='bfloat16': pulls toward bf16-rounded theta0", tol=1e-6)
