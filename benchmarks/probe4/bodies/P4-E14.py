# olor_mm.core.theta0.saved_theta0(state) (usage.md: "reads it from a saved state") on a file written after
# 3 resumes, with anchor_dtype='bfloat16' and a group added mid-run: the values are the pretrained weights
# (bf16-rounded) and the added group's join values
from olor_mm.core.theta0 import saved_theta0
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)
        self.extra = nn.Linear(6, 2)

    def forward(self, x):
        h = self.backbone(x)
        return self.head(h) + self.extra(h)
def build(m, added):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('backbone',), exclude=('extra',), rollback_max=0.3)
    g2 = [dict(grp, params=[p for p in grp['params'] if all(p is not q for q in m.extra.parameters())]) for grp in g]
    o = torch.optim.SGD(g2, lr=0.1, momentum=0.9)
    attach_rollback(o, setup=g.setup, anchor_dtype='bfloat16')
    if added:
        o.add_param_group(dict(params=list(m.extra.parameters()), rollback=0.2))
    return o
m = M(); pre = {n: p.detach().clone() for n, p in m.named_parameters()}
o = build(m, False)
xs = [torch.randn(5, 4) for _ in range(9)]
join = None
with tempfile.TemporaryDirectory() as d:
    for i, x in enumerate(xs):
        if i == 2:
            o.add_param_group(dict(params=list(m.extra.parameters()), rollback=0.2))
            join = {n: p.detach().clone() for n, p in m.extra.named_parameters()}
        if i in (4, 6, 8):
            torch.save({'m': m.state_dict(), 'o': o.state_dict()}, f'{d}/ck.pth')
            ck = torch.load(f'{d}/ck.pth')
            m = M(); o = build(m, True); m.load_state_dict(ck['m']); o.load_state_dict(ck['o'])
        o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
    torch.save({'o': o.state_dict()}, f'{d}/final.pth')
    st = torch.load(f'{d}/final.pth')['o']
try:
    t0 = saved_theta0(st)
except Exception as e:
    verdict('poor', f'saved_theta0: {type(e).__name__}: {str(e)[:200]}')
print(type(t0), (list(t0.keys())[:3] if isinstance(t0, dict) else len(t0)))
# expected per parameter position in the optimizer's param order
names = {id(p): n for n, p in m.named_parameters()}
expect = []
for grp in o.param_groups:
    for p in grp['params']:
        n = names[id(p)]
        if grp['rollback'] > 0:
            v = join[n[len('extra.'):]] if n.startswith('extra.') else pre[n]
            expect.append((n, v.to(torch.bfloat16)))
flat = []
if isinstance(t0, dict):
    for k, v in t0.items():
        if isinstance(v, dict):
            flat += list(v.values())
        elif isinstance(v, (list, tuple)):
            flat += list(v)
        else:
            flat.append(v)
else:
    flat = list(t0)
def match(v):
    return any(t.shape == v.shape and torch.equal(t.to(torch.bfloat16), v) for t in flat)
missing = [n for n, v in expect if not match(v)]
if missing:
    verdict('lost', f'saved_theta0 after 3 resumes lacks the expected theta0 of {missing}')
verdict('good', f'saved_theta0 returns the pretrained (bf16) and join-time theta0 of all {len(expect)} anchored tensors after 3 resumes')
