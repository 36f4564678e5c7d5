# a user-written torch.optim.Optimizer subclass (a Lion-style update): the rollback hangs on the base class's step
# hooks, so it applies as to torch's own optimizers
class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for grp in self.param_groups:
            b1, b2 = grp['betas']
            for p in grp['params']:
                if p.grad is None:
                    continue
                st = self.state[p]
                if 'm' not in st:
                    st['m'] = torch.zeros_like(p)
                p.mul_(1 - grp['lr'] * grp['weight_decay'])
                u = (st['m'] * b1 + p.grad * (1 - b1)).sign_()
                p.add_(u, alpha=-grp['lr'])
                st['m'].mul_(b2).add_(p.grad, alpha=1 - b2)
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = Lion(g, lr=1e-2, weight_decay=0.1)
try:
    attach_rollback(oA, setup=g.setup)
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
rB = Ref(Lion(twin_groups(g, mA, mB), lr=1e-2, weight_decay=0.1))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
sd = copy.deepcopy(oA.state_dict())
mR = copy.deepcopy(mA); gR = layerwise_rollback_groups(mR, pretrained_prefixes=('backbone',), rollback_max=0.3)
oR = Lion(gR, lr=1e-2, weight_decay=0.1); attach_rollback(oR, setup=gR.setup); oR.load_state_dict(sd)
x = torch.randn(5, 4)
for m, o in ((mA, oA), (mR, oR)):
    o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
if not exact(mA, mR):
    verdict('silent', f'custom optimizer: resumed copy differs by {maxdiff(mA, mR):.3e}')
judge_numbers(d, 'a user-written Optimizer subclass (Lion-style)')
