# Adam(amsgrad=True, foreach=True) and Adagrad(fused=True, lr_decay) vs the explicit lerp; Adam(capturable=True)
# on the CPU must fail exactly as torch fails without the rollback
d = []
for Opt, kw in ((torch.optim.Adam, dict(lr=1e-2, amsgrad=True, foreach=True)),
                (torch.optim.Adagrad, dict(lr=1e-1, lr_decay=1e-2, fused=True))):
    torch.manual_seed(2)
    mA = M(); mB = copy.deepcopy(mA)
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
    try:
        oA = Opt(g, **kw)
        attach_rollback(oA, setup=g.setup)
        rB = Ref(Opt(twin_groups(g, mA, mB), **kw))
        d += drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
    except Exception as e:
        verdict('poor', f'{Opt.__name__}({kw}): {type(e).__name__}: {str(e)[:200]}')
def cap(with_rb):
    m = M(); gg = layerwise_rollback_groups(m, pretrained_prefixes=('backbone',), rollback_max=0.3)
    o = torch.optim.Adam(gg, lr=1e-2, capturable=True)
    if with_rb:
        attach_rollback(o, setup=gg.setup)
    o.zero_grad(); m(torch.randn(5, 4)).pow(2).mean().backward()
    try:
        o.step(); return None
    except Exception as e:
        return f'{type(e).__name__}: {e}'
ep, ea = cap(False), cap(True)
if ep != ea:
    verdict('poor', f'capturable=True on CPU: torch says {ep!r}, with the rollback {ea!r}')
judge_numbers(d, f'Adam(amsgrad, foreach) and Adagrad(fused, lr_decay); capturable on CPU: the same torch error with and without rollback')
