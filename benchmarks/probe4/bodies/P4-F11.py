# anchor_dtype='float16' with a float32 weight larger than float16's range (a layer-scale / embedding of ~1e5):
# theta0 cast to fp16 is inf. docs (reliability.md "Non-finite values"): "theta0 is never taken from NaN / inf
# weights" (ValueError). Acceptable: refused naming anchor_dtype / the range, or theta0 kept finite.
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.stem = nn.Linear(4, 6)
        self.backbone.gain = nn.Parameter(torch.full((6,), 1.0e5))    # finite in fp32, inf in fp16
        self.backbone.blk = nn.Linear(6, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.backbone.blk(torch.tanh(self.backbone.stem(x)) * self.backbone.gain * 1e-5)))
mA = M()
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3,
                              layer_patterns=[(r'^stem\.', (0,)), (r'^gain$', (1,)), (r'^blk\.', (2,))])
oA = torch.optim.SGD(g, lr=0.1)
try:
    attach_rollback(oA, setup=g.setup, anchor_dtype='float16')
    x = torch.randn(5, 4)
    for _ in range(3):
        oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
except Exception as e:
    msg = str(e)
    if names_any(msg, ['anchor_dtype', 'float16', 'range', 'overflow', 'finite', 'inf']):
        verdict('good', f'refused naming the cause: {type(e).__name__}: {msg[:200]}')
    verdict('poor', f'{type(e).__name__}: {msg[:200]}')
gain = mA.backbone.gain.detach()
try:
    t0 = [t for l in theta0_groups(oA) if l for t in l]
    inf_t0 = any(not torch.isfinite(t).all() for t in t0)
    save_msg = 'state_dict() saved'
except Exception as e:
    inf_t0 = '?'
    save_msg = f'state_dict() then refuses: {type(e).__name__}: {str(e)[:170]}'
if not torch.isfinite(gain).all():
    verdict('lost', f'3 steps ran without error but the finite fp32 weight backbone.gain (1e5) became {gain[:2].tolist()}: '
                    f'theta0 cast to float16 overflowed to inf and the rollback pulled toward it; {save_msg}')
if inf_t0 is True:
    verdict('silent', 'theta0 holds inf (fp16 overflow), weights still finite')
verdict('good', 'large weight with an fp16 anchor kept finite')
