# channels_last weights with fused AdamW and foreach SGD: the rollback against the same kernel + lerp
def net():
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 2, 1))
res = []
for kind, kw in (('AdamW', dict(fused=True)), ('SGD', dict(foreach=True, momentum=0.9))):
    torch.manual_seed(1)
    mA = net().to(memory_format=torch.channels_last)
    mB = copy.deepcopy(mA)
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.25)
    Opt = getattr(torch.optim, kind)
    oA = Opt(g, lr=1e-2, **kw)
    attach_rollback(oA, setup=g.setup)
    rB = Ref(Opt(twin_groups(g, mA, mB), lr=1e-2, **kw))
    xs = [torch.randn(2, 3, 5, 5).to(memory_format=torch.channels_last) for _ in range(4)]
    res += drive(mA, oA, mB, rB, xs)
judge_numbers(res, 'channels_last with fused AdamW and foreach SGD')
