# gradient clipping (clip_grad_norm_ on all params, small max_norm) then step: Eq. 6 of the clipped update
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.5, momentum=0.9)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.5, momentum=0.9))
d = []
for _ in range(4):
    x = torch.randn(5, 4) * 10
    for m, o in ((mA, oA), (mB, rB.opt)):
        o.zero_grad(); m(x).pow(2).mean().backward()
        nn.utils.clip_grad_norm_(m.parameters(), max_norm=0.1)
    oA.step(); rB.step()
    d.append(maxdiff(mA, mB))
judge_numbers(d, 'clip_grad_norm_(0.1) before each step')
