# handle.remove() for a last phase without rollback, then a checkpoint, then a resume that attaches again:
# docs silent on saving after remove(); acceptable: theta0 still restored, or a refusal naming the cause.
# Not acceptable: theta0 silently re-taken from the fine-tuned weights.
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=0.3)
    o = torch.optim.SGD(g, lr=0.1)
    h = attach_rollback(o, setup=g.setup)
    return o, h
m = net(); init = {n: p.detach().clone() for n, p in m.named_parameters()}
o, h = build(m)
x = torch.randn(5, 4)
for _ in range(2):
    o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
h.remove()
for _ in range(2):
    o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
sd = copy.deepcopy(o.state_dict())
has_t0 = any('olor_rollback.theta0' in grp for grp in sd['param_groups'])
mR = net(); mR.load_state_dict(m.state_dict()); oR, hR = build(mR)
try:
    oR.load_state_dict(sd)
    lam = oR.param_groups[0]['rollback']
    oR.zero_grad(); mR(x).pow(2).mean().backward()
    w = mR[0].weight.detach().clone(); gr = mR[0].weight.grad.clone()
    oR.step()
except Exception as e:
    msg = str(e)
    if names_any(msg, ['theta0']) and names_any(msg, ["no 'olor_rollback'", 'remove', 'written with', 'lacks', 'without']):
        verdict('good', f'docs silent on saving after remove(): the state (theta0 in it: {has_t0}) is refused on resume, naming the missing theta0 entry: {msg[:160]}')
    verdict('poor', f'state saved after remove() (theta0 in it: {has_t0}): {type(e).__name__}: {msg[:600]}')
hat = w - 0.1 * gr
if torch.allclose(mR[0].weight.detach(), torch.lerp(hat, init['0.weight'], lam), atol=1e-7, rtol=0):
    verdict('good', f'theta0 survived remove() + save (in state: {has_t0}); resume rolls back toward the pretrained weights')
if torch.allclose(mR[0].weight.detach(), torch.lerp(hat, w, lam), atol=1e-7, rtol=0):
    verdict('lost', 'after remove() the saved state has no theta0 and the resumed run silently re-anchored to the fine-tuned weights')
verdict('silent', 'resumed after remove(): weights off both expectations')
