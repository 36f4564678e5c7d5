# OLOR on one optimizer and L2-SP on another (two models), both through MMEngine's build_optim_wrapper with the
# constructor (docs usage.md "L2-SP": g_S += alpha*(w_S - w0_S), g_new += beta*w_new, in the step pre-hook)
from mmengine.optim import build_optim_wrapper
from mmengine.model import BaseModel
class M(BaseModel):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x, mode='tensor'):
        return self.head(self.backbone(x))
m1 = M(); m2 = M(); r1 = copy.deepcopy(m1); r2 = copy.deepcopy(m2)
w1 = build_optim_wrapper(m1, dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
                                  constructor='LayerwiseRollbackConstructor',
                                  paramwise_cfg=dict(rollback_max=0.3, pretrained_prefixes=('backbone',))))
w2 = build_optim_wrapper(m2, dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
                                  constructor='LayerwiseRollbackConstructor',
                                  paramwise_cfg=dict(method='l2sp', alpha=0.5, beta=0.2, pretrained_prefixes=('backbone',))))
g1 = twin_groups(w1.optimizer.param_groups, m1, r1)
for h in g1:
    h.pop('initial_lr', None)
R1 = Ref(torch.optim.SGD(g1, lr=0.1))
w0_2 = {n: p.detach().clone() for n, p in r2.named_parameters()}
d1, d2 = [], []
for _ in range(4):
    x = torch.randn(5, 4)
    w1.update_params(m1(x).pow(2).mean())
    w2.update_params(m2(x).pow(2).mean())
    R1.opt.zero_grad(); r1(x).pow(2).mean().backward(); R1.step()
    r2.zero_grad(); r2(x).pow(2).mean().backward()
    with torch.no_grad():
        for n, p in r2.named_parameters():
            gpen = 0.5 * (p - w0_2[n]) if n.startswith('backbone') else 0.2 * p
            p.sub_(0.1 * (p.grad + gpen))
    d1.append(maxdiff(m1, r1)); d2.append(maxdiff(m2, r2))
if max(d2) > 1e-6:
    verdict('silent', f'L2-SP optimizer off the hand computation by {max(d2):.3e} (OLOR one: {max(d1):.1e})')
judge_numbers(d1, f'OLOR optimizer beside an L2-SP optimizer (L2-SP within {max(d2):.1e} of the hand computation)')
