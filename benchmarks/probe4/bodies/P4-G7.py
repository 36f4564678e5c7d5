# SparseAdam with sparse embedding gradients (nn.Embedding(sparse=True)); docs (2026-12-07, usage.md theta0
# section): a sparse gradient rolls back only where the step changed the tensor (SparseAdam: the rows used)
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.e0 = nn.Embedding(12, 4, sparse=True)
        self.backbone.e1 = nn.Embedding(12, 4, sparse=True)
        self.backbone.e2 = nn.Embedding(12, 4, sparse=True)

    def forward(self, i):
        b = self.backbone
        return (b.e0(i) * b.e1(i) + b.e2(i)).pow(2).mean()
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.4, layer_patterns=[r'^e(\d+)\.'])
try:
    oA = torch.optim.SparseAdam(g, lr=1e-1)
    attach_rollback(oA, setup=g.setup)
except Exception as e:
    verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
rB = Ref(torch.optim.SparseAdam(twin_groups(g, mA, mB), lr=1e-1))
xs = [torch.tensor([0, 1, 2]), torch.tensor([2, 3]), torch.tensor([5, 0])]
try:
    d = drive(mA, oA, mB, rB, xs, loss=lambda out: out)
except Exception as e:
    verdict('poor', f'{type(e).__name__} at {os.path.basename(innermost(e))}: {str(e)[:200]}')
untouched = torch.equal(mA.backbone.e0.weight[11], mB.backbone.e0.weight[11])
judge_numbers(d, 'SparseAdam on sparse embedding grads (the rows the step changed rolled back)')
