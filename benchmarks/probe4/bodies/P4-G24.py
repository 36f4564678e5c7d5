# torch.amp.GradScaler('cpu') in a plain loop with a fused AdamW; one step with an inf gradient:
# docs: "Under torch's GradScaler a fused optimizer is called even for a step with inf/NaN gradients (it updates
# nothing); the rollback reads the scaler's found_inf and skips that step too."
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
oA = torch.optim.AdamW(g, lr=1e-2, fused=True)
attach_rollback(oA, setup=g.setup)
scaler = torch.amp.GradScaler('cpu', init_scale=2.0 ** 4)
rB = Ref(torch.optim.AdamW(twin_groups(g, mA, mB), lr=1e-2, fused=True))
d = []
for i in range(4):
    x = torch.randn(5, 4)
    oA.zero_grad(); scaler.scale(mA(x).pow(2).mean()).backward()
    if i == 2:
        mA.backbone[0].weight.grad[0, 0] = float('inf')
    before = {n: p.detach().clone() for n, p in mA.named_parameters()}
    scaler.step(oA); scaler.update()
    if i == 2:
        moved = [n for n, p in mA.named_parameters() if not torch.equal(p, before[n])]
        if moved:
            verdict('silent', f'a step the scaler skipped (inf grad) still moved {moved}')
        continue
    rB.opt.zero_grad(); mB(x).pow(2).mean().backward(); rB.step()
    d.append(maxdiff(mA, mB))
judge_numbers(d, 'GradScaler(cpu) + fused AdamW: inf step skipped by both, others Eq. 6', tol=1e-6)
