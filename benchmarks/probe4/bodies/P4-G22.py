# torch.optim.swa_utils.SWALR raising the lr above its start (swa_lr > lr): docs: lam_eff = lam_i*lr_t/lr_0 with
# lr_0 "the largest lr the group has had", "lam_eff <= lam_i whatever the schedule"
from torch.optim.swa_utils import SWALR
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.01)
h = attach_rollback(oA, setup=g.setup)
sA = SWALR(oA, swa_lr=0.05, anneal_epochs=3)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.01))
sB = SWALR(rB.opt, swa_lr=0.05, anneal_epochs=3)
d = []
lams = []
for _ in range(6):
    d += drive(mA, oA, mB, rB, [torch.randn(5, 4)])
    lams.append(max(l / grp['rollback'] for l, grp in zip(h.lam_effs(), oA.param_groups) if grp['rollback'] > 0))
    sA.step(); sB.step()
if max(lams) > 1 + 1e-12:
    verdict('silent', f'lam_eff / lam_i reached {max(lams):.3f} > 1 under SWALR')
judge_numbers(d, 'SWALR climbing to swa_lr=5x lr: lam_eff <= lam_i, Eq. 6 with lr_0 = running max')
