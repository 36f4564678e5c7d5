# the state dict of a deep-copied optimizer (some loops keep `best = copy.deepcopy(optimizer)` and save
# best.state_dict()): docs: deepcopy "keep[s] the key but drop[s] the optimizer's hooks". Acceptable: theta0 in the
# saved state, or saving / resuming refused with the cause. Not acceptable: a resume anchored to fine-tuned weights.
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=0.3)
    o = torch.optim.SGD(g, lr=0.1)
    attach_rollback(o, setup=g.setup)
    return o
m = net(); init = {n: p.detach().clone() for n, p in m.named_parameters()}
o = build(m)
x = torch.randn(5, 4)
for _ in range(3):
    o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
try:
    best = copy.deepcopy(o)
    sd = copy.deepcopy(best.state_dict())
except Exception as e:
    msg = str(e)
    if names_any(msg, ['deepcopy', 'copy', 'attach']):
        verdict('good', f'saving a deep-copied optimizer refused with the cause: {msg[:200]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
has_t0 = any('olor_rollback.theta0' in grp for grp in sd['param_groups'])
mR = net(); mR.load_state_dict(m.state_dict()); oR = build(mR)
try:
    oR.load_state_dict(sd)
    lam = oR.param_groups[0]['rollback']
    oR.zero_grad(); mR(x).pow(2).mean().backward()
    w = mR[0].weight.detach().clone(); gr = mR[0].weight.grad.clone()
    oR.step()
except Exception as e:
    msg = str(e)
    if not has_t0 and names_any(msg, ['theta0', 'olor_rollback']):
        verdict('lost', f'the deep-copied optimizer\'s state_dict() was written without theta0 and without a word (the original\'s has it); '
                        f'only the resume notices, and its message points elsewhere: {msg[:170]}')
    if names_any(msg, ['theta0', 'olor_rollback']):
        verdict('good', f'refused on resume naming theta0: {msg[:200]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
hat = w - 0.1 * gr
if torch.allclose(mR[0].weight.detach(), torch.lerp(hat, init['0.weight'], lam), atol=1e-7, rtol=0):
    verdict('good', f'the copy\'s state dict carries theta0 ({has_t0}); resume anchored to the pretrained weights')
verdict('lost', 'the copy\'s state dict lost theta0 and the resume re-anchored elsewhere')
