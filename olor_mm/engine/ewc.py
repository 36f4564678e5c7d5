"""EWC: elastic weight consolidation (Kirkpatrick et al., PNAS 2017).

The fine-tuning loss gets the regulariser::

    Omega(w) = alpha / 2 * sum_i F_i (w_i - w0_i)^2 + beta / 2 * ||w_new||^2

over the pretrained weights ``w_S`` (anchored at ``w0`` = olor-mm's
``theta0``, as in L2-SP), with ``F`` the diagonal Fisher information of the
upstream task at ``w0`` (:mod:`olor_mm.core.fisher`), estimated at training
start on ``fisher_batches`` batches of ``fisher_dataloader``. As L2-SP, it
is applied as its gradient before the optimizer step (and before
clipping)::

    g_S   <- g_S   + alpha * F * (w_S - w0_S)
    g_new <- g_new + beta  * w_new

``F`` is saved with ``theta0`` in the optimizer state (key
``'ewc_anchor'``), so a resume restores it instead of estimating it again.
"""
import logging
from typing import Dict, List, Optional, Union

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import MODELS, OPTIM_WRAPPERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_checkpoint

from ..core.fisher import fisher_by_name, normalize_fisher
from ..core.rollback import is_real
from ..core.theta0 import Anchor, checkpoint_note
from .l2sp import AmpL2SPOptimWrapper, L2SPMixin, L2SPOptimWrapper, Penalty

#: key of EWC's entry (theta0 and the Fisher) in the optimizer state dict
STATE_KEY = 'ewc_anchor'


class FisherAnchor(Anchor):
    """An :class:`Anchor` that also keeps ``F`` per anchored tensor and
    saves / restores it with ``theta0``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fisher: Optional[Dict[int, torch.Tensor]] = None  # id(param)
        self.fisher_scale: Optional[float] = None

    def set_fisher(self, fisher: Dict[int, torch.Tensor],
                   scale: Optional[float]) -> None:
        """``{id(param): F}`` for the anchored tensors (a missing frozen
        one gets zeros: it never moves)."""
        missing = [
            p for p in self.anchored_params
            if id(p) not in fisher and p.requires_grad
        ]
        if missing:
            raise ValueError(
                f'{self.owner}: no Fisher information for {len(missing)} '
                f'anchored tensors (shapes '
                f'{[tuple(p.shape) for p in missing[:3]]}...).')
        self.fisher = {
            id(p): fisher[id(p)].to(p.device)
            if id(p) in fisher else torch.zeros_like(p)
            for p in self.anchored_params
        }
        self.fisher_scale = scale

    def take_new_groups(self) -> None:
        """As :meth:`Anchor.take_new_groups`; a tensor that joins after F
        was estimated has no upstream Fisher: F = 0 (not pulled back)."""
        before = len(self.anchored_params) if self._theta0 is not None else 0
        super().take_new_groups()
        joined = self.anchored_params[before:] if self.fisher else []
        if joined:
            for p in joined:
                self.fisher[id(p)] = torch.zeros_like(p)
            print_log(
                f'{self.owner}: {len(joined)} tensors joined after the '
                'Fisher information was estimated: F = 0 for them (no '
                'pull toward theta0).',
                logger='current',
                level=logging.WARNING)

    def bucket_fisher(self) -> List[List[torch.Tensor]]:
        """``F`` in the order of :attr:`buckets` (built once per layout)."""
        return [[self.fisher[id(p)] for p in b.params] for b in self.buckets]

    def state_entry(self) -> dict:
        entry = super().state_entry()
        if self.fisher is not None and entry['theta0'] is not None:
            index = self._param_index()
            entry['fisher'] = {
                index[id(p)]: self.fisher[id(p)]
                for p in self.anchored_params
            }
            entry['fisher_scale'] = self.fisher_scale
        return entry

    def check_entry(self, entry: dict) -> None:
        """Refuse an entry with theta0 but no Fisher (before torch loads)."""
        if entry.get('theta0') is not None and entry.get('fisher') is None:
            raise KeyError(
                f"{self.owner}: the optimizer state to load"
                f"{checkpoint_note()} holds theta0 but no Fisher "
                "information ('fisher'): it was not written by "
                'EWCOptimWrapper. Resume from a checkpoint of the EWC '
                'run, or start a new fine-tune with load_from=<ckpt> '
                'and resume=False.')

    def _load_post_hook(self, optimizer) -> None:
        """Restore ``F`` from the entry the base pre-hook checked."""
        super()._load_post_hook(optimizer)
        entry = self._loaded_entry
        if entry is None or entry.get('theta0') is None or entry.get(
                'fisher') is None:
            return
        saved, scale = entry['fisher'], entry.get('fisher_scale')
        index = self._param_index()
        fisher = {}
        for p in self.anchored_params:
            f = saved.get(index[id(p)])
            if f is not None:
                if f.shape != p.shape:
                    raise ValueError(
                        f'{self.owner}: the saved Fisher of parameter '
                        f'#{index[id(p)]} has shape {tuple(f.shape)}, the '
                        f"model's {tuple(p.shape)}.")
                fisher[id(p)] = f.to(device=p.device, dtype=p.dtype)
        self.set_fisher(fisher, scale)


def _build_fisher_model(model_cfg, checkpoint, device):
    """The upstream model of ``fisher_model`` (a config file or a model
    dict) with ``fisher_checkpoint``'s weights, every weight trainable."""
    if isinstance(model_cfg, str):
        path = model_cfg
        if '::' in path:  # an installed package's config (mmdet::...)
            path = Config._get_cfg_path(path, '')[0]
        model_cfg = Config.fromfile(path).model
    model = MODELS.build(model_cfg)
    if checkpoint is None:
        raise ValueError(
            'optim_wrapper.fisher_checkpoint is not set: fisher_model is '
            'the upstream model, give it its weights '
            "(fisher_checkpoint='upstream.pth').")
    load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
    model.to(device)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


class EWCMixin(L2SPMixin):
    """The EWC penalty on an MMEngine OptimWrapper (see below)."""

    #: alpha on the normalised Fisher: L2-SP's scale; EWC has no beta
    spec = Penalty('EWC', FisherAnchor, STATE_KEY, alpha=1.0, beta=0.0)

    def __init__(self,
                 optimizer,
                 fisher_dataloader: Optional[dict] = None,
                 fisher_batches: int = 50,
                 fisher_model: Union[str, dict, None] = None,
                 fisher_checkpoint: Optional[str] = None,
                 fisher_normalize: bool = True,
                 **kwargs):
        super().__init__(optimizer, **kwargs)
        self._init_ewc(fisher_dataloader, fisher_batches, fisher_model,
                       fisher_checkpoint, fisher_normalize)

    def _init_ewc(self, fisher_dataloader, fisher_batches, fisher_model,
                  fisher_checkpoint, fisher_normalize) -> None:
        if (isinstance(fisher_batches, bool) or not is_real(fisher_batches)
                or fisher_batches < 1
                or int(fisher_batches) != fisher_batches):
            raise ValueError(
                f'optim_wrapper.fisher_batches={fisher_batches!r} must be '
                'an integer >= 1 (the upstream batches F is estimated on).')
        if fisher_model is not None and fisher_checkpoint is None:
            raise ValueError(
                'optim_wrapper.fisher_model is set without '
                'fisher_checkpoint: give the upstream model its weights '
                "(fisher_checkpoint='upstream.pth').")
        self.fisher_dataloader = fisher_dataloader
        self.fisher_batches = int(fisher_batches)
        self.fisher_model = fisher_model
        self.fisher_checkpoint = fisher_checkpoint
        self.fisher_normalize = bool(fisher_normalize)
        self._fisher_buckets = None

    # ------------------------------------------------------------ Fisher
    @property
    def fisher(self) -> Optional[List[torch.Tensor]]:
        """``F`` of the anchored tensors (order of :attr:`theta0`)."""
        f = self.anchor.fisher
        return None if f is None else [
            f[id(p)] for p in self.anchor.anchored_params
        ]

    def set_fisher(self,
                   fisher: List[torch.Tensor],
                   scale: Optional[float] = None) -> None:
        """Set ``F`` by hand (one tensor per :attr:`anchored_params`)."""
        params = self.anchor.anchored_params
        if len(fisher) != len(params):
            raise ValueError(f'EWC: {len(fisher)} Fisher tensors for '
                             f'{len(params)} anchored tensors.')
        self.anchor.set_fisher({id(p): f
                                for p, f in zip(params, fisher)}, scale)
        self._fisher_buckets = None

    def estimate_fisher(self, model, dataloader=None) -> None:
        """Estimate ``F`` at the current (pretrained) weights of ``model``:
        on ``fisher_batches`` batches of ``dataloader`` (default: the
        ``fisher_dataloader`` of the config, built here), with the
        ``fisher_model`` when one is set, else with ``model`` itself."""
        model = getattr(model, 'module', model)
        names = {id(p): n for n, p in model.named_parameters()}
        anchored = self.anchor.anchored_params
        want = {names[id(p)]: p for p in anchored if id(p) in names}
        if len(want) != len(anchored):
            raise ValueError(
                'EWC: some anchored tensors are not parameters of the model '
                'given to estimate_fisher(); pass the model being trained.')
        if dataloader is None:
            if self.fisher_dataloader is None:
                raise ValueError(
                    'EWCOptimWrapper needs the upstream data to estimate the '
                    'Fisher information: set optim_wrapper.fisher_dataloader '
                    '(e.g. the upstream config\'s train_dataloader) and '
                    'fisher_batches.')
            dataloader = Runner.build_dataloader(
                self.fisher_dataloader, seed=0)
        device = next(iter(want.values())).device
        source = model
        if self.fisher_model is not None:
            source = _build_fisher_model(self.fisher_model,
                                         self.fisher_checkpoint, device)
        shapes = {n: p.shape for n, p in want.items()}
        by_name = fisher_by_name(
            source, dataloader, self.fisher_batches,
            lambda n, p: n in shapes and p.shape == shapes[n])
        missing = [
            n for n, p in want.items() if n not in by_name and p.requires_grad
        ]
        if missing:
            raise ValueError(
                f'EWC: {len(missing)} pretrained tensors of the fine-tuned '
                'model have no tensor of the same name and shape in '
                f'fisher_model (e.g. {missing[:3]}): narrow '
                'paramwise_cfg.pretrained_prefixes to the layers both models '
                'share, or set fisher_model=None to estimate F with the '
                'fine-tuned model itself.')
        fisher = [by_name.get(n, torch.zeros_like(p)) for n, p in want.items()]
        scale = normalize_fisher(fisher) if self.fisher_normalize else None
        del source
        self.set_fisher(fisher, scale)
        fmt = f'{scale:.3g}' if scale is not None else 'not normalised'
        print_log(
            f'EWC: Fisher information of {len(fisher)} pretrained tensors '
            f'estimated on {self.fisher_batches} upstream batches (raw '
            f'mean {fmt}{"; divided by it" if scale else ""}).',
            logger='current')

    def _at_training_start(self, model) -> None:
        """``F`` after ``theta0`` (unless a resume restored both)."""
        if self.anchor.fisher is None:
            self.estimate_fisher(model)

    def _penalty_weights(self, bucket: int, sel):
        if self.anchor.fisher is None:
            raise RuntimeError(
                'EWC: no Fisher information yet: under a Runner it is '
                'estimated at training start; outside one call '
                'estimate_fisher(model, dataloader) or set_fisher(...) '
                'before the first step.')
        # rebuilt when the anchor rebuilds its buckets (a group joined)
        if self._fisher_buckets is None or (self._fisher_buckets[0]
                                            is not self.anchor.buckets):
            self._fisher_buckets = (self.anchor.buckets,
                                    self.anchor.bucket_fisher())
        fb = self._fisher_buckets[1][bucket]
        return fb if len(sel) == len(fb) else [fb[k] for k in sel]

    def penalty(self) -> float:
        """``alpha/2 sum F (w_S - w0_S)^2 + beta/2 ||w_new||^2``."""
        self.anchor.ensure_theta0()
        total = 0.0
        with torch.no_grad():
            for b, fb in zip(self.anchor.buckets, self.anchor.bucket_fisher()):
                diff = torch._foreach_sub(b.params, b.anchors)
                total += sum(
                    float((f * d * d).sum()) for f, d in zip(fb, diff))
            new = sum(
                float(p.detach().pow(2).sum()) for ps in self._new_buckets
                for p in ps)
        return self.alpha / 2 * total + self.beta / 2 * new


_ARGS_DOC = """
        alpha (float): Weight of the Fisher-weighted pull toward the
            pretrained weights. Defaults to 1.0 (with the normalised F:
            L2-SP's alpha scale, alpha / 2 * mean(F (w - w0)^2) summed).
        beta (float): Weight of the L2 penalty on the new weights.
            Defaults to 0 (EWC has none).
        fisher_dataloader (dict): The upstream data F is estimated on (a
            dataloader config as ``train_dataloader``; the upstream
            config's ``train_dataloader`` in the recipe).
        fisher_batches (int): Its batches used. Defaults to 50.
        fisher_model (str | dict, optional): The upstream model (its config
            file or model dict) whose loss F measures, its class-specific
            heads included; with ``fisher_checkpoint`` its weights. None:
            the fine-tuned model itself at theta0 (when the two tasks share
            the heads).
        fisher_checkpoint (str, optional): Weights of ``fisher_model``.
        fisher_normalize (bool): Divide F by its mean over the pretrained
            weights (the raw mean is logged and saved). Defaults to True.
        anchor_dtype (str | torch.dtype, optional): Dtype of ``theta0``.
"""


@OPTIM_WRAPPERS.register_module()
class EWCOptimWrapper(EWCMixin, L2SPOptimWrapper):
    """OptimWrapper with the EWC penalty toward the pretrained weights.

    Before each real update the wrapped optimizer sees::

        g_S   <- g_S   + alpha * F * (w_S - w0_S)   (pretrained weights)
        g_new <- g_new + beta  * w_new              (the other ones)

    the gradient of ``alpha/2 sum_i F_i (w_i - w0_i)^2 + beta/2
    ||w_new||^2``, where ``F`` is the diagonal Fisher information of the
    upstream task (:mod:`olor_mm.core.fisher`) estimated once, at training
    start after ``load_from``, and saved with ``w0`` under ``'ewc_anchor'``.
    Pretrained means what :class:`LayerwiseRollbackConstructor` numbered
    (``paramwise_cfg.pretrained_prefixes``), as for L2-SP.

    Args:
        optimizer (Optimizer): Built by ``LayerwiseRollbackConstructor``.
    """ + _ARGS_DOC + """
        **kwargs: ``accumulative_counts``, ``clip_grad`` of OptimWrapper.

    Examples:
        >>> optim_wrapper = dict(
        >>>     type='EWCOptimWrapper',
        >>>     alpha=1.0,  # Fisher-weighted pull toward the pretrained
        >>>     # upstream data and model: F = mean (dL_up / dw)^2 at w0
        >>>     fisher_dataloader=upstream_cfg.train_dataloader,
        >>>     fisher_batches=50,  # batches F is averaged over
        >>>     fisher_model='upstream_config.py',
        >>>     fisher_checkpoint='upstream.pth',
        >>>     optimizer=dict(
        >>>         _delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05),
        >>>     constructor='LayerwiseRollbackConstructor',
        >>>     paramwise_cfg=dict(pretrained_prefixes=('backbone',)))
    """


@OPTIM_WRAPPERS.register_module()
class AmpEWCOptimWrapper(EWCMixin, AmpL2SPOptimWrapper):
    """EWC under mixed precision (:class:`EWCOptimWrapper`'s AMP twin).

    As :class:`~olor_mm.engine.l2sp.AmpL2SPOptimWrapper`: the penalty's
    gradient is added multiplied by the loss scale ``S``, so after
    unscaling the optimizer sees the fp32 rule; F is estimated in float32
    (outside autocast). Runs on the CPU too (bfloat16).

    Args:
        loss_scale, dtype, use_fsdp: As MMEngine's AmpOptimWrapper.
    """ + _ARGS_DOC + """
    Examples:
        >>> # EWCOptimWrapper's example, with this type and a loss scale
        >>> # (``tools/train.py --amp`` makes this switch)
        >>> optim_wrapper = dict(type='AmpEWCOptimWrapper',
        >>>                      loss_scale='dynamic', alpha=1.0)
    """
