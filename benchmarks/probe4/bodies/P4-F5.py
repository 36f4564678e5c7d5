# anchor_dtype misspelt as a string the user might guess ('bf16', 'half'): refused naming anchor_dtype + choices, or
# taken as the intended dtype
mA = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
out = []
for s in ('bf16', 'half'):
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('',), rollback_max=0.5)
    oA = torch.optim.SGD(g, lr=0.1)
    try:
        h = attach_rollback(oA, setup=g.setup, anchor_dtype=s)
        x = torch.randn(5, 4)
        oA.zero_grad(); mA(x).pow(2).mean().backward(); oA.step()
        dts = {t.dtype for l in theta0_groups(oA) if l for t in l}
        exp = {'bf16': torch.bfloat16, 'half': torch.float16}[s]
        if dts != {exp}:
            verdict('silent', f'anchor_dtype={s!r} accepted but theta0 kept as {dts}')
        out.append(f'{s!r} taken as {exp}')
    except Exception as e:
        msg = str(e)
        if names_any(msg, ['anchor_dtype']) and names_any(msg, ['bfloat16', 'float16']):
            out.append(f'{s!r} refused: {msg[:100]}')
        else:
            verdict('poor', f'anchor_dtype={s!r}: {type(e).__name__}: {msg[:200]}')
verdict('good', '; '.join(out))
