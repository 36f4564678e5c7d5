# a model built on the 'meta' device (no storage): groups + optimizer + attach, then a step with meta grads
# docs silent on meta: expect it to run (meta in, meta out) or a clear error naming the meta device
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2)).to('meta')
try:
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
    oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    attach_rollback(oA, setup=g.setup)
except Exception as e:
    msg = str(e)
    if names_any(msg, ['meta']):
        verdict('good', f'refused at build naming meta: {msg[:200]}')
    verdict('poor', f'building on meta: {type(e).__name__}: {msg[:200]}')
for p in mA.parameters():
    p.grad = torch.empty_like(p)
try:
    oA.step()
except Exception as e:
    msg = str(e)
    if names_any(msg, ['meta']) and (names_any(msg, ['olor', 'theta0', 'rollback', 'to_empty', 'device'])):
        verdict('good', f'first step on meta refused naming the meta device: {type(e).__name__}: {msg[:200]}')
    verdict('poor', f'first step on meta params: {type(e).__name__} at {os.path.basename(innermost(e))}: {msg[:200]}')
dev = {t.device.type for l in theta0_groups(oA) if l for t in l}
verdict('good', f'docs silent; a step on meta parameters runs (theta0 on {dev}), like torch itself')
