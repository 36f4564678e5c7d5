# MMEngine constructor, a tied weight whose NON-pretrained alias (head) is registered first and has custom_keys
# lr_mult=10; the pretrained alias (backbone.emb) second. docs: "one group, updated once, pretrained if any of its
# names is" (reliability.md fixed table, "a weight tied into two modules").
from mmengine.optim import build_optim_wrapper
from mmengine.model import BaseModel
class M(BaseModel):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(6, 10, bias=False)
        self.backbone = nn.Module()
        self.backbone.emb = nn.Embedding(10, 6)
        self.backbone.mlp = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.backbone.emb.weight = self.head.weight

    def forward(self, x, mode='tensor'):
        return self.head(self.backbone.mlp(self.backbone.emb(x)))
mA = M()
ow = build_optim_wrapper(mA, dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
                                  constructor='LayerwiseRollbackConstructor',
                                  paramwise_cfg=dict(rollback_max=0.3, pretrained_prefixes=('backbone',),
                                                     layer_patterns=[(r'^emb\.', (0,)), r'^mlp\.(\d+)\.'],
                                                     custom_keys={'head': dict(lr_mult=10.)})))
grs = [grp for grp in ow.optimizer.param_groups if any(p is mA.head.weight for p in grp['params'])]
cnt = sum(1 for grp in ow.optimizer.param_groups for p in grp['params'] if p is mA.head.weight)
if cnt != 1:
    verdict('silent', f'tied weight listed {cnt} times')
if grs[0]['rollback'] <= 0:
    verdict('silent', f"tied weight with a pretrained name (backbone.emb.weight) gets rollback={grs[0]['rollback']} "
                      f"(lr {grs[0]['lr']}): docs: pretrained if any of its names is")
verdict('good', f"tied weight once, rollback={grs[0]['rollback']}, lr={grs[0]['lr']} (which alias's lr_mult applies: docs silent)")
