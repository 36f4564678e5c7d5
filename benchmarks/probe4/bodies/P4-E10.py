# the 3rd of several resumes forgets attach_rollback (the state loaded into a bare optimizer):
# docs (reliability.md / usage.md): "the bare optimizer refuses to step" naming the fix; nothing trains silently
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m, attach=True):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=0.3)
    o = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    if attach:
        attach_rollback(o, setup=g.setup)
    return o
xs = [torch.randn(5, 4) for _ in range(12)]
m = net(); o = build(m)
for i, x in enumerate(xs):
    if i in (3, 6, 9):
        ck = copy.deepcopy({'m': m.state_dict(), 'o': o.state_dict()})
        m = net(); o = build(m, attach=(i != 9)); m.load_state_dict(ck['m'])
        try:
            o.load_state_dict(ck['o'])
        except Exception as e:
            if names_any(str(e), ['attach_rollback']):
                verdict('good', f'loading into a bare optimizer refused naming attach_rollback: {str(e)[:160]}')
            verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
    try:
        o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
    except Exception as e:
        if i == 9 and names_any(str(e), ['attach_rollback', 'attach']):
            verdict('good', f'the bare optimizer refuses to step, naming the fix: {str(e)[:170]}')
        verdict('poor', f'step {i}: {type(e).__name__}: {str(e)[:200]}')
verdict('silent', 'a resume that forgot attach_rollback trained on as a plain optimizer without a word')
