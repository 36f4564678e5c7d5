# closure-based step: opt.step(closure) returns the closure's loss; the update is Eq. 6 of SGD's
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
d = []
for _ in range(4):
    x = torch.randn(5, 4)
    def cA():
        oA.zero_grad(); l = mA(x).pow(2).mean(); l.backward(); return l
    def cB():
        rB.opt.zero_grad(); l = mB(x).pow(2).mean(); l.backward(); return l
    la = oA.step(cA); lb = rB.step(cB)
    if la is None or not torch.equal(la, lb):
        verdict('silent', f'step(closure) returned {la}, the closure gave {lb}')
    d.append(maxdiff(mA, mB))
judge_numbers(d, 'SGD step(closure): loss returned, Eq. 6')
