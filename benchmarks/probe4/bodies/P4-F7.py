# meta-device init pattern: build on meta, to_empty(device='cpu'), load weights, THEN build groups/optimizer/attach
# (the documented order: attach right after building the optimizer); theta0 = the loaded weights
with torch.device('meta'):
    mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
mA.to_empty(device='cpu')
torch.manual_seed(9)
pre = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2)).state_dict()
mA.load_state_dict(pre)
mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(3)])
judge_numbers(d, 'meta init + to_empty + load, then attach')
