# MMEngine path: LayerwiseRollbackConstructor on a model whose backbone and neck share one module
# (no bypass_duplicate). docs (reliability.md, fixed table): "a weight tied into two modules ... one group, updated once"
from mmengine.optim import build_optim_wrapper
from mmengine.model import BaseModel
class M(BaseModel):
    def __init__(self):
        super().__init__()
        sh = nn.Linear(6, 6)
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), sh, nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.neck = nn.Sequential(sh, nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x, mode='tensor'):
        return self.head(self.neck(self.backbone(x)))
mA = M(); mB = copy.deepcopy(mA)
cfg = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
           constructor='LayerwiseRollbackConstructor',
           paramwise_cfg=dict(rollback_max=0.3, pretrained_prefixes=('backbone',)))
try:
    ow = build_optim_wrapper(mA, cfg)
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
opt = ow.optimizer
cnt = sum(1 for grp in opt.param_groups for p in grp['params'] if p is mA.backbone[2].weight)
if cnt != 1:
    verdict('silent', f'shared weight listed {cnt} times in the built optimizer')
gB = twin_groups(opt.param_groups, mA, mB)
for h in gB:
    h.pop('initial_lr', None)
rB = Ref(torch.optim.SGD(gB, lr=0.1, momentum=0.9))
d = []
for _ in range(4):
    x = torch.randn(5, 4)
    ow.update_params(mA(x).pow(2).mean())
    rB.opt.zero_grad(); mB(x).pow(2).mean().backward(); rB.step()
    d.append(maxdiff(mA, mB))
judge_numbers(d, 'MMEngine constructor, module shared by backbone and neck: once, Eq. 6', tol=1e-6)
