# torch.compile of the optimizer step (the pattern of torch's "compiling the optimizer" recipe)
import time
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.Adam(g, lr=1e-2)
attach_rollback(oA, setup=g.setup)
rB = Ref(torch.optim.Adam(twin_groups(g, mA, mB), lr=1e-2))
backend = os.environ.get('P4_COMPILE_BACKEND', 'inductor')
@torch.compile(backend=backend)
def cstep():
    oA.step()
d = []
t = time.time()
for _ in range(4):
    x = torch.randn(5, 4)
    oA.zero_grad(); mA(x).pow(2).mean().backward()
    rB.opt.zero_grad(); mB(x).pow(2).mean().backward()
    try:
        cstep()
    except Exception as e:
        msg = str(e)
        verdict('poor', f'torch.compile(step) ({backend}): {type(e).__name__}: {msg[:200]}')
    rB.step()
    d.append(maxdiff(mA, mB))
print(f'compiled steps took {time.time() - t:.1f} s')
judge_numbers(d, f'torch.compile(optimizer.step) backend={backend}', tol=1e-6)
