# a step where no tensor has a gradient (all .grad None: e.g. a skipped batch) and a step where only one tensor
# has one: docs "The rollback runs only on tensors that got a gradient in that update"
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
init = {n: p.detach().clone() for n, p in mA.named_parameters()}
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.5)
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
oA.zero_grad(set_to_none=True)
oA.step()           # nothing has a gradient
for n, p in mA.named_parameters():
    if not torch.equal(p, init[n]):
        verdict('silent', f'{n} changed by a step without any gradient')
# only 0.weight gets a gradient
mA[0].weight.grad = torch.ones_like(mA[0].weight)
lam = [grp['rollback'] for grp in oA.param_groups if any(p is mA[0].weight for p in grp['params'])][0]
oA.step()
exp = torch.lerp(init['0.weight'] - 0.1, init['0.weight'], lam)
for n, p in mA.named_parameters():
    if n != '0.weight' and not torch.equal(p, init[n]):
        verdict('silent', f'{n} (no gradient) moved by the rollback')
if not torch.allclose(mA[0].weight.detach(), exp, atol=1e-7, rtol=0):
    verdict('silent', f'0.weight off Eq. 6 by {(mA[0].weight.detach() - exp).abs().max():.3e}')
verdict('good', 'gradient-free step changes nothing; a one-gradient step rolls back only that tensor (Eq. 6)')
