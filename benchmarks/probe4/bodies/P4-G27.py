# lr given as a tensor (torch allows it for fused / capturable Adam(W)): AdamW(lr=torch.tensor(1e-2), fused=True)
mA = M(); mB = copy.deepcopy(mA)
g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
try:
    oA = torch.optim.AdamW(g, lr=torch.tensor(1e-2), fused=True)
    attach_rollback(oA, setup=g.setup)
    sA = torch.optim.lr_scheduler.StepLR(oA, 2, 0.5)
    rB = Ref(torch.optim.AdamW(twin_groups(g, mA, mB), lr=torch.tensor(1e-2), fused=True))
    sB = torch.optim.lr_scheduler.StepLR(rB.opt, 2, 0.5)
    d = []
    for _ in range(5):
        d += drive(mA, oA, mB, rB, [torch.randn(5, 4)]); sA.step(); sB.step()
    sd = oA.state_dict()
    buf = io.BytesIO(); torch.save(sd, buf); buf.seek(0); torch.load(buf)
except Exception as e:
    verdict('poor', f'{type(e).__name__} at {os.path.basename(innermost(e))}: {str(e)[:200]}')
judge_numbers(d, 'tensor lr (fused AdamW) under StepLR', tol=1e-7)
