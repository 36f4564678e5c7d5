# in-place resize of a rolled-back parameter after theta0 was taken: with no_grad, p.set_(bigger)
# (p.resize_ is refused by torch for tensors requiring grad; set_ is torch's in-place way)
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
x = torch.randn(5, 4)
for _ in range(2):
    oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
with torch.no_grad():
    mA[0].bias.set_(torch.zeros(7))
for p in mA.parameters():
    p.grad = torch.ones_like(p)
try:
    oA.step()
except Exception as e:
    msg = str(e)
    if names_any(msg, ['theta0', 'olor', 'rollback']) and names_any(msg, ['0.bias', 'parameter', 'param', 'tensor #']):
        verdict('good', f'refused naming theta0 and the parameter: {type(e).__name__}: {msg[:200]}')
    verdict('poor', f'{type(e).__name__} (torch message, raised at {os.path.basename(innermost(e))}), names neither theta0 nor the parameter: {msg[:200]}')
verdict('silent', f'no error after resizing a rolled-back tensor 6->7 in place (theta0 has 6 elements); bias={mA[0].bias.detach().tolist()}')
