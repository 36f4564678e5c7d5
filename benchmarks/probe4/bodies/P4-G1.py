# torch.optim.RAdam(lr=1e-2, weight_decay=1e-2, decoupled_weight_decay=True) with the rollback vs RAdam + explicit Eq. 6 lerp (README: "the optimizer (SGD, AdamW, ...)";
# get_started.md development notes: "every optimizer against optimizer + explicit lerp")
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x))
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
try:
    oA = torch.optim.RAdam(g, lr=1e-2, weight_decay=1e-2, decoupled_weight_decay=True)
    attach_rollback(oA, setup=g.setup)
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
rB = Ref(torch.optim.RAdam(twin_groups(g, mA, mB), lr=1e-2, weight_decay=1e-2, decoupled_weight_decay=True))
try:
    d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(5)])
except Exception as e:
    verdict('poor', f'{type(e).__name__} at {os.path.basename(innermost(e))}: {str(e)[:200]}')
# the state dict round trip on this optimizer too
sd = copy.deepcopy(oA.state_dict())
mR = copy.deepcopy(mA); gR = layerwise_rollback_groups(mR, pretrained_prefixes=('backbone',), rollback_max=0.3)
oR = torch.optim.RAdam(gR, lr=1e-2, weight_decay=1e-2, decoupled_weight_decay=True); attach_rollback(oR, setup=gR.setup)
try:
    oR.load_state_dict(sd)
except Exception as e:
    verdict('poor', f'state round trip of RAdam: {type(e).__name__}: {str(e)[:200]}')
x = torch.randn(5, 4)
for m, o in ((mA, oA), (mR, oR)):
    o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
if not exact(mA, mR):
    verdict('silent', f'RAdam: resumed copy differs from the original by {maxdiff(mA, mR):.3e}')
judge_numbers(d, 'RAdam(lr=1e-2, weight_decay=1e-2, decoupled_weight_decay=True)')
