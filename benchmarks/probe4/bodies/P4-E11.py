# resume into an optimizer that lacks a group the run added with add_param_group (the resume script forgot it):
# a clear error naming the group count (torch's own "different number of parameter groups", or olor-mm's)
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), exclude=('4',), rollback_max=0.3)
    g = [dict(grp, params=[p for p in grp['params'] if p is not m[4].bias]) for grp in g]
    o = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    attach_rollback(o)
    return o
m = net(); o = build(m)
x = torch.randn(5, 4)
o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
o.add_param_group(dict(params=[m[4].bias], rollback=0.2))
o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
ck = copy.deepcopy({'m': m.state_dict(), 'o': o.state_dict()})
mR = net(); oR = build(mR); mR.load_state_dict(ck['m'])
try:
    oR.load_state_dict(ck['o'])
except Exception as e:
    msg = str(e)
    if names_any(msg, ['number of parameter groups', 'param groups', 'parameter groups', 'add_param_group']):
        verdict('good', f'refused naming the group count: {type(e).__name__}: {msg[:180]}')
    verdict('poor', f'{type(e).__name__} at {os.path.basename(innermost(e))}: {msg[:200]}')
verdict('silent', 'a state with one more param group loaded without a word')
