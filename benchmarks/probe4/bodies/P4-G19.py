# torch.func.functional_call + torch.func.grad to compute gradients, written into p.grad, then opt.step()
from torch.func import functional_call, grad
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.AdamW(g, lr=1e-2)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.AdamW(twin_groups(g, mA, mB), lr=1e-2))
d = []
for _ in range(4):
    x = torch.randn(5, 4)
    for m, o in ((mA, oA), (mB, rB.opt)):
        params = {n: p.detach() for n, p in m.named_parameters()}
        gr = grad(lambda ps: functional_call(m, ps, (x,)).pow(2).mean())(params)
        for n, p in m.named_parameters():
            p.grad = gr[n]
    oA.step(); rB.step()
    d.append(maxdiff(mA, mB))
judge_numbers(d, 'gradients from torch.func.grad(functional_call) then step')
