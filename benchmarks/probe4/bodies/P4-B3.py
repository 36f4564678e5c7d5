# add_param_group(rollback=0.3) mid-training, then save + resume into a fresh model/optimizer rebuilt the same way
# docs (reliability.md fixed table): "anchored to its values when it joins, resumable"
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)
        self.extra = nn.Linear(6, 2)

    def forward(self, x):
        h = self.backbone(x)
        return self.head(h) + self.extra(h)


def build(model):
    g = layerwise_rollback_groups(model, pretrained_prefixes=('backbone',), rollback_max=0.3, exclude=('extra',))
    g2 = [dict(grp, params=[p for p in grp['params'] if all(p is not q for q in model.extra.parameters())]) for grp in g]
    o = torch.optim.SGD(g2, lr=0.1, momentum=0.9)
    h = attach_rollback(o, setup=g.setup)
    return o


torch.manual_seed(0)
xs = [torch.randn(5, 4) for _ in range(8)]
m0 = M()
init = copy.deepcopy(m0.state_dict())

def train(m, o, batches):
    for x in batches:
        o.zero_grad(); m(x).pow(2).mean().backward(); o.step()

# uninterrupted
mS = M(); mS.load_state_dict(init); oS = build(mS)
train(mS, oS, xs[:3]); oS.add_param_group(dict(params=list(mS.extra.parameters()), rollback=0.3)); train(mS, oS, xs[3:])
# interrupted after step 5
mI = M(); mI.load_state_dict(init); oI = build(mI)
train(mI, oI, xs[:3]); oI.add_param_group(dict(params=list(mI.extra.parameters()), rollback=0.3)); train(mI, oI, xs[3:5])
buf = io.BytesIO(); torch.save({'m': mI.state_dict(), 'o': oI.state_dict()}, buf); buf.seek(0)
ck = torch.load(buf)
mR = M(); mR.load_state_dict(ck['m']); oR = build(mR)
oR.add_param_group(dict(params=list(mR.extra.parameters()), rollback=0.3))
try:
    oR.load_state_dict(ck['o'])
except Exception as e:
    verdict('poor', f'resume after add_param_group refused: {type(e).__name__}: {str(e)[:200]}')
train(mR, oR, xs[5:])
if exact(mS, mR):
    t = theta0_groups(oR)[-1]
    verdict('good', 'resume of a group added mid-training: bit-identical to the uninterrupted run')
verdict('silent', f'resume after add_param_group differs from the uninterrupted run by {maxdiff(mS, mR):.3e}')
