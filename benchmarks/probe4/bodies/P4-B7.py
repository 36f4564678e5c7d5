# a layer frozen (requires_grad=False) after the optimizer is built, before the first step; changed by code
# while frozen; unfrozen later. docs (usage.md, theta0): "theta0 covers every parameter of the rolled-back
# groups, frozen ones too, so a layer frozen when training starts and unfrozen later rolls back toward its
# pretrained value"
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
pre = {n: p.detach().clone() for n, p in mA.named_parameters()}
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.4, exclude=('6',))
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
for p in mA[0].parameters():
    p.requires_grad_(False)                 # frozen for a warm-up
x = torch.randn(5, 4)
for _ in range(2):
    oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
with torch.no_grad():
    mA[0].weight.mul_(0.5)      # code changes the frozen weight (e.g. a re-init) while frozen
for p in mA[0].parameters():
    p.requires_grad_(True)
lam0 = [grp['rollback'] for grp in oA.param_groups if any(p is mA[0].weight for p in grp['params'])][0]
oA.zero_grad(); mA(x).pow(2).mean().backward()
w_hat = mA[0].weight.detach() - 0.1 * mA[0].weight.grad
try:
    oA.step()
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
exp = torch.lerp(w_hat, pre['0.weight'], lam0)
if torch.allclose(mA[0].weight.detach(), exp, atol=1e-7, rtol=0):
    verdict('good', 'a layer frozen at the first step, edited, then unfrozen rolls back toward its pretrained value (Eq. 6)')
exp2 = torch.lerp(w_hat, pre['0.weight'] * 0.5, lam0)
if torch.allclose(mA[0].weight.detach(), exp2, atol=1e-7, rtol=0):
    verdict('silent', 'the unfrozen layer rolls back toward its value when unfrozen, not the pretrained one (docs: toward its pretrained value)')
verdict('silent', f'unfrozen layer off Eq. 6 toward the pretrained value by {(mA[0].weight.detach() - exp).abs().max():.3e}')
