# differentiable=True (SGD): compare with what torch itself does without the rollback on the same set-up
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
torch.manual_seed(0); m0 = net(); x = torch.randn(5, 4)
def plain():
    m = copy.deepcopy(m0); o = torch.optim.SGD(m.parameters(), lr=0.1, differentiable=True)
    o.zero_grad(); m(x).pow(2).mean().backward()
    try:
        o.step(); return m, None
    except Exception as e:
        return m, e
mP, eP = plain()
mA = copy.deepcopy(m0); mB = copy.deepcopy(m0)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, differentiable=True)
attach_rollback(oA, setup=g.setup)
oA.zero_grad(); mA(x).pow(2).mean().backward()
try:
    oA.step(); eA = None
except Exception as e:
    eA = e
if eP is not None:
    if eA is not None and type(eA) is type(eP) and str(eA) == str(eP):
        verdict('good', f'torch itself refuses differentiable=True on leaf parameters; with the rollback the same error: {str(eP)[:100]}')
    if eA is not None and names_any(str(eA), ['differentiable']):
        verdict('good', f'torch refuses it; olor-mm refuses naming differentiable: {str(eA)[:150]}')
    verdict('poor', f'torch says "{str(eP)[:80]}", with rollback: {type(eA).__name__ if eA else None}: {str(eA)[:150]}')
if eA is not None:
    verdict('poor', f'torch steps differentiable=True fine, with the rollback: {type(eA).__name__}: {str(eA)[:200]}')
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, differentiable=True))
verdict('good', 'stepped')
