# handle.remove() BEFORE the first step, then attach again (nothing was ever anchored):
# works (theta0 at the first step) or refused naming the fix
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
h = attach_rollback(oA, setup=g.setup)
h.remove()
try:
    attach_rollback(oA, setup=g.setup)
except Exception as e:
    msg = str(e)
    if names_any(msg, ['from_current_weights', 'load_state_dict']):
        verdict('good', f'reattach before any step refused with the fix: {msg[:200]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
try:
    d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(3)])
except Exception as e:
    msg = str(e)
    if names_any(msg, ['from_current_weights', 'load_state_dict']):
        verdict('good', f'refused at the first step with the fix (docs: an optimizer carrying olor_anchor takes no theta0 from its weights): {msg[:150]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
judge_numbers(d, 'remove() before the first step then re-attach: theta0 at the first step')
