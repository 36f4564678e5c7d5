# parameters whose .data are views into one flat buffer (a "flat parameter" layout made with
# torch.nn.utils.vector_to_parameters-style assignment), set before attach: Eq. 6 per tensor, the buffer stays shared
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
def flatten(m):
    flat = torch.nn.utils.parameters_to_vector(m.parameters()).detach().clone()
    i = 0
    for p in m.parameters():
        n = p.numel()
        p.data = flat[i:i + n].view_as(p)
        i += n
    return flat
flatA = flatten(mA)
mB = copy.deepcopy(mA)
flatB = flatten(mB)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.3)
oA = torch.optim.SGD(g, lr=0.1, momentum=0.9)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.SGD(twin_groups(g, mA, mB), lr=0.1, momentum=0.9))
d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(4)])
if mA[0].weight.data_ptr() != flatA.data_ptr():
    verdict('silent', 'the rollback detached a parameter from its flat buffer')
judge_numbers(d, 'parameters that are views of one flat buffer')
