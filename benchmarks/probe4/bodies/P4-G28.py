# the first optimizer.step() run inside torch.inference_mode() (a step wrapped in an inference context by a custom
# loop). Control: what torch does without the rollback (SGD without momentum: torch keeps no state, so any failure
# afterwards would be the rollback's theta0 created as an inference tensor)
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
torch.manual_seed(0); m0 = net(); xs = [torch.randn(5, 4) for _ in range(4)]
def run(with_rb):
    m = copy.deepcopy(m0)
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=0.3)
    o = torch.optim.SGD(g, lr=0.1)
    if with_rb:
        attach_rollback(o, setup=g.setup)
    for i, x in enumerate(xs):
        o.zero_grad(); m(x).pow(2).mean().backward()
        if i == 0:
            with torch.inference_mode():
                o.step()
        else:
            o.step()
    if with_rb:
        sd = copy.deepcopy(o.state_dict())
        buf = io.BytesIO(); torch.save(sd, buf)
    return m, o
mP, oP = run(False)
try:
    mA, oA = run(True)
except Exception as e:
    msg = str(e)
    if names_any(msg, ['inference']) and names_any(msg, ['theta0', 'olor', 'rollback']):
        verdict('good', f'refused naming inference mode: {msg[:200]}')
    verdict('poor', f'plain torch steps fine; with the rollback {type(e).__name__} at {os.path.basename(innermost(e))}: {msg[:200]}')
mB = copy.deepcopy(m0)
gB = layerwise_rollback_groups(mB, pretrained_prefixes=('',), rollback_max=0.3)
rB = Ref(torch.optim.SGD(gB, lr=0.1))
for x in xs:
    rB.opt.zero_grad(); mB(x).pow(2).mean().backward(); rB.step()
judge_numbers([maxdiff(mA, mB)], 'first step inside torch.inference_mode(), 3 more outside, state saved')
