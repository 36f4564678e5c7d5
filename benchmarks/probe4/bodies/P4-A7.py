# p.data replaced by a tensor of ANOTHER (non-broadcastable) shape after theta0 was taken (a layer widened by code)
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1)      # no momentum: torch itself holds no state that would object
attach_rollback(oA, setup=g.setup)
x = torch.randn(5, 4)
for _ in range(2):
    oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
# widen the first layer 6 -> 8 outputs (theta0 has 6 rows), and the next layer's inputs
mA[0].weight.data = torch.randn(8, 4); mA[0].bias.data = torch.randn(8)
mA[2].weight.data = torch.randn(6, 8)
try:
    oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
except Exception as e:
    msg = str(e)
    if names_any(msg, ['theta0', 'olor', 'rollback']) and names_any(msg, ['0.weight', '0.bias', 'parameter', 'param', 'tensor #']):
        verdict('good', f'refused by olor-mm naming the parameter and shapes: {type(e).__name__}: {msg[:200]}')
    verdict('poor', f'{type(e).__name__} (torch message, raised at {os.path.basename(innermost(e))}), names neither theta0 nor the parameter: {msg[:200]}')
verdict('silent', 'a widened rolled-back layer trained on without error (theta0 has the old shape)')
