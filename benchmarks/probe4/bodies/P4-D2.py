# one model split over two optimizers: backbone in an SGD with rollback, head in a separate Adam, also attached
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
gb = [grp for grp in g if grp['layer_id'] is not None]
gh = [grp for grp in g if grp['layer_id'] is None]
o1 = torch.optim.SGD(gb, lr=0.1, momentum=0.9)
o2 = torch.optim.Adam(gh, lr=1e-2)
try:
    attach_rollback(o1, setup=g.setup)
    attach_rollback(o2)       # nothing to roll back in it: a warning at most
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
R1 = Ref(torch.optim.SGD(twin_groups(gb, mA, mB), lr=0.1, momentum=0.9))
R2 = Ref(torch.optim.Adam(twin_groups(gh, mA, mB), lr=1e-2))
d = []
for _ in range(4):
    x = torch.randn(5, 4)
    for o in (o1, o2, R1.opt, R2.opt):
        o.zero_grad()
    mA(x).pow(2).mean().backward(); mB(x).pow(2).mean().backward()
    o1.step(); o2.step(); R1.step(); R2.step()
    d.append(maxdiff(mA, mB))
judge_numbers(d, 'backbone and head in two optimizers, both attached')
