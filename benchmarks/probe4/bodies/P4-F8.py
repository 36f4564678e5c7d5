# model.double() AFTER theta0 was taken (float32 theta0, float64 params now; same Parameter objects):
# docs silent; acceptable: Eq. 6 toward theta0 cast to float64, or a clear error; silent skip is wrong
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
pre = {n: p.detach().clone() for n, p in mA.named_parameters()}
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.5)
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
x = torch.randn(5, 4)
oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
mA.double()
lam = {id(p): grp['rollback'] for grp in oA.param_groups for p in grp['params']}
oA.zero_grad(); mA(x.double()).pow(2).mean().backward()
hat = {n: (p.detach() - 0.1 * p.grad).clone() for n, p in mA.named_parameters()}
try:
    oA.step()
except Exception as e:
    msg = str(e)
    if names_any(msg, ['dtype', 'float64', 'double']) and names_any(msg, ['theta0', 'olor', 'rollback', 'anchor']):
        verdict('good', f'refused naming the dtype change: {msg[:200]}')
    verdict('poor', f'{type(e).__name__} at {os.path.basename(innermost(e))}: {msg[:200]}')
bad = 0.0
for n, p in mA.named_parameters():
    exp = torch.lerp(hat[n], pre[n].double(), lam[id(p)])
    bad = max(bad, (p.detach() - exp).abs().max().item())
if bad <= 1e-12:
    verdict('good', 'docs silent; after model.double() the rollback follows Eq. 6 toward theta0 cast to float64')
verdict('silent', f'after model.double() weights off Eq. 6 by {bad:.3e}')
