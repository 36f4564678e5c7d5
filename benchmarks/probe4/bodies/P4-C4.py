# a parameter in two param groups (the layerwise groups + a hand-made group with a special lr for one weight)
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
groups = list(g) + [dict(params=[mA[0].weight], lr=0.01)]
try:
    oA = torch.optim.SGD(groups, lr=0.1)
    attach_rollback(oA)
except Exception as e:
    msg = str(e)
    if names_any(msg, ['more than one parameter group', 'appear', 'duplicate', 'twice']):
        verdict('good', f'refused before training: {type(e).__name__}: {msg[:160]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
x = torch.randn(5, 4)
oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
verdict('silent', 'a parameter in two groups trained without a word (updated twice per step)')
