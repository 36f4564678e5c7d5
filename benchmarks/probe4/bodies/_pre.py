# ---- common preamble (inlined into every case; the case body follows) ----
import copy, io, logging, os, sys, tempfile, traceback, warnings
import torch
import torch.nn as nn
torch.set_num_threads(1)
torch.manual_seed(0)
import olor_mm
from olor_mm import attach_rollback, layerwise_rollback_groups

CID = os.path.basename(__file__)[:-3]


def verdict(v, msg):
    print(f'VERDICT {CID} {v} {msg}')
    sys.exit(0)


def innermost(exc):
    """file of the innermost traceback frame of exc"""
    tb = exc.__traceback__
    f = None
    while tb is not None:
        f = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return f or ''


def from_olor(exc):
    return 'olor_mm' in innermost(exc)


def names_any(msg, words):
    m = msg.lower()
    return any(w.lower() in m for w in words)


class LogCatcher(logging.Handler):
    """catches every log record of every logger (olor-mm may log, warn or print)"""
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.msgs = []

    def emit(self, record):
        try:
            self.msgs.append(record.getMessage())
        except Exception:
            pass


def catch_all():
    h = LogCatcher()
    logging.getLogger().addHandler(h)
    logging.getLogger().setLevel(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        lg = logging.getLogger(name)
        lg.addHandler(h)
    return h


def twin_groups(groups, mA, mB):
    """the same group structure with mB's parameters (by name)"""
    names = {}
    for n, p in mA.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), n)
    pB = dict(mB.named_parameters(remove_duplicate=False))
    out = []
    for g in groups:
        h = {k: v for k, v in g.items() if k != 'params'}
        h['params'] = [pB[names[id(p)]] for p in g['params']]
        out.append(h)
    return out


class Ref:
    """plain optimizer + explicit Eq. 6 lerp: theta = lerp(theta_hat, theta0, lam_i*lr_t/lr_0)"""
    def __init__(self, opt, scale_with_lr=True, anchor_dtype=None):
        self.opt = opt
        self.scale = scale_with_lr
        self.anchor_dtype = anchor_dtype
        self.theta0 = None
        self.lr0 = None

    def take(self):
        self.theta0 = {}
        for g in self.opt.param_groups:
            for p in g['params']:
                t = p.detach().clone()
                if self.anchor_dtype is not None:
                    t = t.to(self.anchor_dtype)
                self.theta0[p] = t
        self.lr0 = [g.get('initial_lr', g['lr']) for g in self.opt.param_groups]

    def step(self, closure=None):
        # docs of 2026-12-07 (usage.md theta0 section): a tensor whose step
        # may leave it unchanged (all-zero or sparse gradient,
        # requires_grad=False) rolls back only where the step changed it;
        # bf16 / fp16 weights: lerp in float32 with the rounding carried
        if self.theta0 is None:
            self.take()
        if not hasattr(self, 'res'):
            self.res = {}
        before = {}
        for g in self.opt.param_groups:
            for p in g['params']:
                gr = p.grad
                if gr is not None and (gr.is_sparse or not p.requires_grad
                                       or not bool((gr != 0).any())):
                    before[p] = p.detach().clone()
        r = self.opt.step(closure) if closure is not None else self.opt.step()
        with torch.no_grad():
            for i, g in enumerate(self.opt.param_groups):
                lam = float(g.get('rollback', 0.0) or 0.0)
                if self.scale:
                    self.lr0[i] = max(self.lr0[i], g['lr'])
                    lam = lam * g['lr'] / self.lr0[i]
                if lam > 0:
                    for p in g['params']:
                        if p.grad is None:
                            continue
                        low = p.dtype in (torch.bfloat16, torch.float16)
                        if low:
                            res = self.res.setdefault(
                                p, torch.zeros_like(p, dtype=torch.float32))
                            q = p.float() + res
                            q.lerp_(self.theta0[p].float(), lam)
                            new, newres = q.to(p.dtype), None
                            newres = q - new.float()
                        else:
                            t0 = self.theta0[p].to(p.dtype)
                            new = p.detach().clone().lerp_(t0, lam)
                        if p in before:
                            changed = p != before[p]
                            p.copy_(torch.where(changed, new, p))
                            if low:
                                res.copy_(torch.where(changed, newres, res))
                        else:
                            p.copy_(new)
                            if low:
                                res.copy_(newres)
        return r


def maxdiff(mA, mB):
    d = 0.0
    pB = dict(mB.named_parameters())
    for n, p in mA.named_parameters():
        d = max(d, (p.detach().double() - pB[n].detach().double()).abs().max().item())
    return d


def exact(mA, mB):
    pB = dict(mB.named_parameters())
    return all(torch.equal(p, pB[n]) for n, p in mA.named_parameters())


def theta0_groups(opt):
    """theta0 lists per group as the docs say optimizer.state_dict() carries them"""
    sd = opt.state_dict()
    return [g.get('olor_rollback.theta0') for g in sd['param_groups']]
# ---- end of preamble ----


def drive(mA, oA, mB, rB, xs, loss=None, zero_kw=None):
    """same batches into the rolled-back model (oA) and the reference (rB); max diff per step"""
    loss = loss or (lambda out: out.float().pow(2).mean())
    zero_kw = zero_kw or {}
    diffs = []
    for x in xs:
        oA.zero_grad(**zero_kw)
        loss(mA(x)).backward()
        rB.opt.zero_grad(**zero_kw)
        loss(mB(x)).backward()
        oA.step()
        rB.step()
        diffs.append(maxdiff(mA, mB))
    return diffs


def judge_numbers(diffs, what, tol=1e-6, exact_expected=False):
    d = max(diffs) if diffs else 0.0
    if d == 0.0:
        verdict('good', f'{what}: bit-identical to optimizer + explicit Eq. 6 lerp ({len(diffs)} steps)')
    if d <= tol and not exact_expected:
        verdict('good', f'{what}: equal to optimizer + explicit Eq. 6 lerp within {d:.2e} (float rounding)')
    verdict('silent', f'{what}: differs from optimizer + explicit Eq. 6 lerp by {d:.3e} (per step {[float("%.2e" % v) for v in diffs]})')


class M(nn.Module):
    """The probe's usual model: a three-layer pretrained backbone and a new
    head (a case that needs another one defines its own M)."""
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.backbone(x))


def optimizer_case(name, **kwargs):
    """torch.optim.<name>(**kwargs) with the rollback vs the same optimizer
    + explicit Eq. 6 lerp for 5 steps, then its state dict round trip: a
    copy resumed from it steps bit-identically to the original."""
    cls = getattr(torch.optim, name)
    what = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    mA = M(); mB = copy.deepcopy(mA)
    g = layerwise_rollback_groups(mA, pretrained_prefixes=('backbone',), rollback_max=0.3)
    try:
        oA = cls(g, **kwargs)
        attach_rollback(oA, setup=g.setup)
    except Exception as e:
        verdict('poor', f'{type(e).__name__}: {str(e)[:200]}')
    rB = Ref(cls(twin_groups(g, mA, mB), **kwargs))
    try:
        d = drive(mA, oA, mB, rB, [torch.randn(5, 4) for _ in range(5)])
    except Exception as e:
        verdict('poor', f'{type(e).__name__} at {os.path.basename(innermost(e))}: {str(e)[:200]}')
    # the state dict round trip on this optimizer too
    sd = copy.deepcopy(oA.state_dict())
    mR = copy.deepcopy(mA); gR = layerwise_rollback_groups(mR, pretrained_prefixes=('backbone',), rollback_max=0.3)
    oR = cls(gR, **kwargs); attach_rollback(oR, setup=gR.setup)
    try:
        oR.load_state_dict(sd)
    except Exception as e:
        verdict('poor', f'state round trip of {name}: {type(e).__name__}: {str(e)[:200]}')
    x = torch.randn(5, 4)
    for m, o in ((mA, oA), (mR, oR)):
        o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
    if not exact(mA, mR):
        verdict('silent', f'{name}: resumed copy differs from the original by {maxdiff(mA, mR):.3e}')
    judge_numbers(d, what)
