# MMEngine build_optim_wrapper with NAdam (no fused kernel -> foreach, merged groups) vs NAdam + explicit lerp
from mmengine.optim import build_optim_wrapper
from mmengine.model import BaseModel
class M(BaseModel):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.neck = nn.Linear(6, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x, mode='tensor'):
        return self.head(self.neck(self.backbone(x)))
mA = M(); mB = copy.deepcopy(mA)
from mmengine.logging import MMLogger
h = catch_all(); MMLogger.get_current_instance().addHandler(h)
ow = build_optim_wrapper(mA, dict(type='OptimWrapper', optimizer=dict(type='NAdam', lr=1e-2, weight_decay=0.01),
                                  constructor='LayerwiseRollbackConstructor',
                                  paramwise_cfg=dict(rollback_max=0.3, pretrained_prefixes=('backbone',),
                                                     custom_keys={'backbone': dict(decay_mult=0.)})))
kern = [m for m in h.msgs if 'kernel' in m]
gB = twin_groups(ow.optimizer.param_groups, mA, mB)
for x in gB:
    x.pop('initial_lr', None); x['foreach'] = True   # the kernel the build line names
rB = Ref(torch.optim.NAdam(gB, lr=1e-2))
d = []
for _ in range(4):
    x = torch.randn(5, 4)
    ow.update_params(mA(x).pow(2).mean())
    rB.opt.zero_grad(); mB(x).pow(2).mean().backward(); rB.step()
    d.append(maxdiff(mA, mB))
wd = {n: [grp['weight_decay'] for grp in ow.optimizer.param_groups if any(p is q for p in grp['params'])][0] for n, q in mA.named_parameters()}
if any(wd[n] != 0 for n in wd if n.startswith('backbone')) or wd['head.weight'] != 0.01:
    verdict('silent', f'weight decay per param wrong: {wd}')
judge_numbers(d, f'MMEngine constructor with NAdam ({kern[0] if kern else "no kernel line"})')
