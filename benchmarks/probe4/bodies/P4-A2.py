# model converted to channels_last AFTER attach_rollback, before the first step (params' .data swapped)
def net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 4, 1))
mA = net()
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.AdamW(g, lr=1e-2, weight_decay=0.0)
attach_rollback(oA, setup=g.setup)
mA.to(memory_format=torch.channels_last)          # same Parameter objects, new .data
mB = copy.deepcopy(mA)
rB = Ref(torch.optim.AdamW(twin_groups(g, mA, mB), lr=1e-2, weight_decay=0.0))
xs = [torch.randn(2, 3, 5, 5).to(memory_format=torch.channels_last) for _ in range(4)]
try:
    diffs = drive(mA, oA, mB, rB, xs)
except Exception as e:
    verdict('poor', f'raised {type(e).__name__}: {str(e)[:150]}')
judge_numbers(diffs, 'model.to(channels_last) after attach, AdamW')
