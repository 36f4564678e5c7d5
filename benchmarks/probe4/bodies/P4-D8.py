# state of an AdamW-with-rollback loaded into an SGD-with-rollback (another optimizer type on resume):
# docs (reliability.md): "another optimizer type on resume ... refused, naming both types"
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
m = net()
g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=0.3)
o = torch.optim.AdamW(g, lr=1e-2); attach_rollback(o, setup=g.setup)
x = torch.randn(5, 4)
o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
sd = o.state_dict()
m2 = net(); g2 = layerwise_rollback_groups(m2, pretrained_prefixes=('',), rollback_max=0.3)
o2 = torch.optim.SGD(g2, lr=0.1, momentum=0.9); attach_rollback(o2, setup=g2.setup)
try:
    o2.load_state_dict(sd)
    o2.zero_grad(); m2(x).pow(2).mean().backward(); o2.step()
except Exception as e:
    msg = str(e)
    if 'AdamW' in msg and 'SGD' in msg:
        verdict('good', f'refused naming both types: {type(e).__name__}: {msg[:180]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
verdict('silent', 'an AdamW state loaded into SGD trained on without a word')
