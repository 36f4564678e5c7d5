# two models' groups concatenated into ONE optimizer (a plain list: .setup lost), attached once
def net():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = net(); self.b = net()

    def forward(self, x):
        return self.a(x) + self.b(x)
mA = Two(); mB = copy.deepcopy(mA)
ga = layerwise_rollback_groups(mA.a, pretrained_prefixes=('',), rollback_max=0.3)
gb = layerwise_rollback_groups(mA.b, pretrained_prefixes=('',), rollback_max=0.1)
groups = list(ga) + list(gb)
oA = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
try:
    attach_rollback(oA)
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
rB = Ref(torch.optim.SGD(twin_groups(groups, mA, mB), lr=0.1, momentum=0.9))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
judge_numbers(d, 'groups of two models concatenated into one optimizer')
