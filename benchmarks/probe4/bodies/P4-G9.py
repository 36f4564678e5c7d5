# SGD foreach=False vs foreach=True with rollback: docs (usage.md): "on the CPU, foreach runs the loop's own
# per-tensor kernels and is bit-identical to it"; both vs the explicit lerp
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
torch.manual_seed(0); m0 = net()
xs = [torch.randn(5, 4) for _ in range(5)]
res = {}
d = []
for fe in (False, True):
    mA = copy.deepcopy(m0); mB = copy.deepcopy(m0)
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.3)
    oA = torch.optim.SGD(g, lr=0.1, momentum=0.9, weight_decay=1e-3, foreach=fe)
    attach_rollback(oA, setup=g.setup)
    rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9, weight_decay=1e-3, foreach=False))
    d += drive(mA, oA, mB, rB, xs)
    res[fe] = mA
if not exact(res[False], res[True]):
    verdict('silent', f'foreach=True and False differ by {maxdiff(res[False], res[True]):.3e} (docs: bit-identical on CPU)')
judge_numbers(d, 'SGD foreach False/True (identical to each other)')
