# resumes WITHOUT restoring the lr scheduler (a fresh OneCycleLR each time, so the lr restarts low after the run
# already passed its peak). docs: lr_0 = "the largest lr the group has had ... kept in the group as
# rollback_lr_peak, so a resume keeps it"; lam_eff = lam_i * lr_t / lr_0 <= lam_i.
# Reference: SGD + explicit lerp with lam_i * lr_t / max(lr seen so far), on the same lr sequence.
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def build(m):
    g = layerwise_rollback_groups(m, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.3)
    o = torch.optim.SGD(g, lr=0.1, momentum=0.9)
    attach_rollback(o, setup=g.setup)
    s = torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=8)
    return o, s
init = net().state_dict()
xs = [torch.randn(5, 4) for _ in range(16)]
m = net(); m.load_state_dict(init); o, s = build(m)
mB = net(); mB.load_state_dict(init)
gB = twin_groups(layerwise_rollback_groups(m, pretrained_prefixes=('',), exclude=('6',), rollback_max=0.3), m, mB)
rB = Ref(torch.optim.SGD(gB, lr=0.1, momentum=0.9))
d = []
for i, x in enumerate(xs):
    if i in (5, 11):       # resume: model + optimizer restored, the scheduler NOT (a new OneCycleLR)
        ck = copy.deepcopy({'m': m.state_dict(), 'o': o.state_dict()})
        m = net(); o, s = build(m); m.load_state_dict(ck['m']); o.load_state_dict(ck['o'])
    lrs = [(grp['lr'], grp['momentum']) for grp in o.param_groups]   # OneCycleLR cycles momentum too
    if rB.theta0 is None:
        rB.take(); rB.lr0 = [grp['lr'] for grp in o.param_groups]
    for grp, (lr, mom) in zip(rB.opt.param_groups, lrs):
        grp['lr'] = lr; grp['momentum'] = mom
    d += drive(m, o, mB, rB, [x])
    s.step()
judge_numbers(d, 'fresh OneCycleLR at each resume: lam_eff = lam_i*lr_t/peak lr kept across resumes')
