# channels_last conv weights (model converted before the optimizer is built), SGD momentum + wd
def net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
mA = net().to(memory_format=torch.channels_last)
mB = copy.deepcopy(mA)
assert mA[0].weight.is_contiguous(memory_format=torch.channels_last)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.2)
oA = torch.optim.SGD(g, lr=0.05, momentum=0.9, weight_decay=1e-3)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.05, momentum=0.9, weight_decay=1e-3))
xs = [torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last) for _ in range(4)]
diffs = drive(mA, oA, mB, rB, xs)
if not mA[0].weight.is_contiguous(memory_format=torch.channels_last):
    verdict('silent', 'the rollback turned a channels_last weight contiguous (memory format changed)')
t0 = theta0_groups(oA)
judge_numbers(diffs, 'channels_last Conv2d weights, SGD momentum')
