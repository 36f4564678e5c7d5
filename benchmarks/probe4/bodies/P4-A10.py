# p.data replaced by a broadcast-compatible shape ((2,) -> (1,2)) after theta0: does the rollback still follow Eq. 6 elementwise?
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.6, rollback_min=0.3)
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
b0 = mA[4].bias.detach().clone()
lam = [grp['rollback'] for grp in oA.param_groups if any(p is mA[4].bias for p in grp['params'])][0]
x = torch.randn(5, 4)
oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
mA[4].bias.data = mA[4].bias.data.reshape(1, 2).clone()
oA.zero_grad(); mA(x).pow(2).mean().backward()
before = mA[4].bias.detach().clone(); gr = mA[4].bias.grad.clone()
try:
    oA.step()
except Exception as e:
    verdict('good', f'refused ({type(e).__name__}: {str(e)[:150]})')
exp = torch.lerp(before - 0.1 * gr, b0.reshape(1, 2), lam)
if mA[4].bias.shape == (1, 2) and torch.allclose(mA[4].bias.detach(), exp, atol=1e-7, rtol=0):
    verdict('good', 'docs silent; a (1,2) re-shaped bias keeps being rolled back elementwise toward its (2,) theta0, Eq. 6 holds')
verdict('silent', f'bias {mA[4].bias.detach().tolist()} expected {exp.tolist()} (lam={lam})')
