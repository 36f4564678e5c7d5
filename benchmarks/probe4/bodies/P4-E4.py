# resume with groups rebuilt with another rollback_max (0.5 instead of 0.2): docs (reliability.md "An edited config
# on resume"): "the checkpoint's values apply ... The run's log says so in one line, naming the checkpoint's and the
# config's values" (plain API included)
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m, rmax):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=rmax)
    o = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    attach_rollback(o, setup=g.setup)
    return o
init = net().state_dict()
xs = [torch.randn(5, 4) for _ in range(8)]
mS = net(); mS.load_state_dict(init); oS = build(mS, 0.2)
for x in xs:
    oS.zero_grad(); mS(x).pow(2).mean().backward(); oS.step()
m = net(); m.load_state_dict(init); o = build(m, 0.2)
for x in xs[:4]:
    o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
ck = copy.deepcopy({'m': m.state_dict(), 'o': o.state_dict()})
h = catch_all()
import contextlib
out = io.StringIO()
with warnings.catch_warnings(record=True) as W, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    warnings.simplefilter('always')
    mR = net(); oR = build(mR, 0.5); mR.load_state_dict(ck['m']); oR.load_state_dict(ck['o'])
    for x in xs[4:]:
        oR.zero_grad(); mR(x).pow(2).mean().backward(); oR.step()
said = [str(w.message) for w in W] + h.msgs + [out.getvalue()]
said = [s for s in said if 'rollback_max' in s]
lams = [grp['rollback'] for grp in oR.param_groups]
if not exact(mS, mR):
    verdict('silent', f'resumed with rollback_max=0.5: weights differ from the 0.2 run by {maxdiff(mS, mR):.3e}; lams {lams}')
if not said or not ('0.2' in said[0] and '0.5' in said[0]):
    verdict('silent', f'checkpoint values applied but nothing said naming both values (docs: one line) {said[:1]}')
verdict('good', f'checkpoint rollback_max=0.2 applies (bit-identical), said: "{said[0][:120]}..."')
