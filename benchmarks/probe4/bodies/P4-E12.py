# resume with one more layer frozen than in the run (requires_grad=False -> layerwise_rollback_groups leaves it out,
# so a group is smaller): refused with a message naming the size / parameter mismatch, before any step
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.3)
    o = torch.optim.AdamW(g, lr=1e-2)
    attach_rollback(o, setup=g.setup)
    return o
m = net(); o = build(m)
x = torch.randn(5, 4)
for _ in range(2):
    o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
ck = copy.deepcopy({'m': m.state_dict(), 'o': o.state_dict()})
mR = net(); mR.load_state_dict(ck['m'])
mR[0].bias.requires_grad_(False)          # the resumed config freezes one more tensor
oR = build(mR)
try:
    oR.load_state_dict(ck['o'])
    oR.zero_grad(); mR(x).pow(2).mean().backward(); oR.step()
except Exception as e:
    msg = str(e)
    if names_any(msg, ["doesn't match the size", 'size', 'shape', 'frozen', 'requires_grad', 'number of']):
        verdict('good', f'refused: {type(e).__name__}: {msg[:200]}')
    # control: torch alone on the same mismatch
    m1 = net(); g1 = [p for p in m1.parameters()]
    o1 = torch.optim.AdamW([{'params': g1[:2]}, {'params': g1[2:]}], lr=1e-2)
    o1.zero_grad(); m1(x).pow(2).mean().backward(); o1.step(); sd1 = o1.state_dict()
    m1[0].bias.requires_grad_(False)
    o2 = torch.optim.AdamW([{'params': [g1[0]]}, {'params': g1[2:]}], lr=1e-2)
    try:
        o2.load_state_dict(sd1); tmsg = 'no error'
    except Exception as e2:
        tmsg = str(e2)
    verdict("poor", f"message contradicts itself and hides the cause (a group holds another number of tensors): "
                    f"{type(e).__name__}: {msg[:300]} | torch alone says: {tmsg[:120]}")
verdict('silent', 'a state whose groups hold another number of tensors loaded and trained on without a word')
