# an optimizer state saved BEFORE its first step (right after attach), reloaded into a fresh model/optimizer;
# the weights are then changed (pretrained loaded) before the first step: theta0 must be the loaded weights
# (docs: "the theta0 of a tensor is its value just before the optimizer first updates it, unless a loaded
# optimizer state restored it" - a never-stepped state holds none)
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), rollback_max=0.3)
    o = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    attach_rollback(o, setup=g.setup)
    return o
m = net(); o = build(m)
ck = copy.deepcopy({'m': m.state_dict(), 'o': o.state_dict()})
mR = net(); oR = build(mR)
mR.load_state_dict(ck['m'])
try:
    oR.load_state_dict(ck['o'])
except Exception as e:
    verdict('poor', f'a never-stepped state refused: {type(e).__name__}: {str(e)[:200]}')
torch.manual_seed(5); pre = net().state_dict(); mR.load_state_dict(pre)   # load "pretrained" weights now
mB = copy.deepcopy(mR)
rB = Ref(torch.optim.SGD(twin_groups(layerwise_rollback_groups(mR, pretrained_prefixes=('',), rollback_max=0.3), mR, mB), lr=0.1, momentum=0.9))
try:
    d = drive(mR, oR, mB, rB, [torch.randn(5, 4) for _ in range(4)])
except Exception as e:
    msg = str(e)
    verdict('poor', f'first step after loading a never-stepped state: {type(e).__name__}: {msg[:200]}')
judge_numbers(d, 'state saved before the first step, resumed, weights loaded: theta0 = the weights at the first step')
