"""What an anchor learns from MMEngine, through what MMEngine offers.

theta0 is taken by the anchor itself (:mod:`olor_mm.core.theta0`: each
tensor's value before its first update, unless a loaded optimizer state
restored it), under every runner and engine and in any call order. Two
questions about the run need MMEngine, and both are answered without
changing anything of MMEngine:

- **is this a resume?** MMEngine's ``RuntimeInfoHook`` (a default hook of
  ``Runner`` and ``FlexibleRunner``) writes the training iteration into the
  run's message hub before each iteration (a resume loads the hub first);
  a forward pre-hook (torch's) on the model reads it at the model's first
  forward, the first training iteration. The anchor asks for it once,
  before it first takes theta0 from the weights: a start > 0 with no
  theta0 restored (a checkpoint saved without the optimizer state,
  ``resume_optimizer=False``) is refused, rather than anchor the run to
  fine-tuned weights.
- **were pretrained weights loaded?** torch's own module hooks: a
  load-state-dict pre-hook on the modules that own anchored tensors sees
  every state dict loaded into them (``load_from``, ``init_cfg``'s
  ``Pretrained``, a resume; MMEngine loads through ``_load_from_state_dict``
  like torch). Before the first theta0 is taken, a warning names the cause
  when nothing was loaded into them (theta0 would be the random
  initialisation) or when a load left some untouched (its keys do not match
  them); the hooks are removed then.

This module needs MMEngine.
"""
import logging
from typing import Dict, Optional

import torch.nn as nn
from mmengine.logging import MessageHub, print_log
from mmengine.model import is_model_wrapper

from ..core.theta0 import Anchor


class StartWatch:
    """The iteration training starts at: what the run's message hub holds
    when the model first runs forward after the optimizer was built (the
    first training iteration; under gradient accumulation or a loss scaler
    that skips steps, the first optimizer step comes later). None when no
    runner wrote it since (a constructor used outside a runner, a stale hub
    of an earlier run in the same process)."""

    def __init__(self, model: nn.Module):
        self.hub = MessageHub.get_current_instance()
        self._built_at = self.hub.get_info('iter')
        self.start: Optional[int] = None
        module = model.module if is_model_wrapper(model) else model
        self._handle = module.register_forward_pre_hook(self._first_forward)

    def _first_forward(self, module, args) -> None:
        self._handle.remove()
        iteration = self.hub.get_info('iter')
        self.start = None if iteration == self._built_at else iteration

    def __call__(self) -> Optional[int]:
        return self.start


def loads_a_checkpoint(module: nn.Module) -> bool:
    """Whether ``module``'s ``init_cfg`` names a checkpoint."""
    init = getattr(module, 'init_cfg', None)
    inits = init if isinstance(init, (list, tuple)) else [init]
    return any(isinstance(i, dict) and i.get('checkpoint') for i in inits)


class LoadWatch:
    """Which anchored tensors a state dict was loaded into, until the
    anchor first takes theta0; then it warns, and removes its hooks."""

    def __init__(self, model: nn.Module, anchor: Anchor):
        model = model.module if is_model_wrapper(model) else model
        anchored = {id(p) for p in anchor.selected_params()}
        self.names: Dict[int, str] = {}
        self.loaded: set = set()
        self.loads = 0
        self._handles = []
        for prefix, module in model.named_modules():
            own = [(n, p) for n, p in module.named_parameters(recurse=False)
                   if id(p) in anchored]
            if not own:
                continue
            for n, p in own:
                self.names[id(p)] = f'{prefix}.{n}' if prefix else n
            self._handles.append(
                _register_pre_hook(module, self._pre_hook(own)))
        # init_cfg loads before the optimizer is built under FlexibleRunner
        # (its strategies initialise the weights first): trusted, as
        # MMEngine runs it
        self.init_cfg = any(loads_a_checkpoint(m) for m in model.modules())
        anchor.before_first_take.append(self.check)

    def _pre_hook(self, own):

        def hook(module, state_dict, prefix, *args):
            self.loads += 1
            found = [p for n, p in own if prefix + n in state_dict]
            if not found and any(
                    k.startswith(prefix) and 'flat_param' in k
                    for k in state_dict):
                found = [p for _, p in own]  # FSDP's flat (sharded) keys
            self.loaded.update(id(p) for p in found)

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def check(self, anchor: Anchor) -> None:
        """Before theta0 is first taken: warn when it would be weights no
        checkpoint was loaded into."""
        self.remove()
        anchor.before_first_take.remove(self.check)
        if self.init_cfg or not self.names:
            return
        if not self.loads:
            print_log(
                f'{anchor.owner}: no checkpoint was loaded into the model '
                '(no load_from, nothing resumed, and no init_cfg names a '
                'checkpoint): theta0, the weights every '
                "step is pulled back toward, is the model's random "
                'initialisation. Set load_from=<the pretrained checkpoint> '
                "or the backbone's init_cfg=dict(type='Pretrained', "
                "checkpoint=...). A first launch with MMDetection's or "
                "MMSegmentation's tools/train.py --resume clears load_from: "
                "olor-mm's tools/train.py keeps it when there is nothing to "
                'resume.',
                logger='current',
                level=logging.WARNING)
            return
        untouched = [
            name for pid, name in self.names.items() if pid not in self.loaded
        ]
        if untouched:
            first = ', '.join(untouched[:3])
            print_log(
                f'{anchor.owner}: the checkpoint loaded into the model '
                f'(load_from) left {len(untouched)} of the '
                f'{len(self.names)} pretrained tensors unchanged (e.g. '
                f'{first}): its '
                "keys do not match them (a backbone-only checkpoint has no "
                "'backbone.' prefix), so their theta0 is the random "
                'initialisation. Load a backbone checkpoint through '
                "init_cfg=dict(type='Pretrained', checkpoint=..., "
                "prefix=...) or re-key it; MMEngine's 'missing keys' list "
                'names them all.',
                logger='current',
                level=logging.WARNING)


def _register_pre_hook(module: nn.Module, hook):
    """torch's load-state-dict pre-hook with the module (public API from
    torch 2.5 on; the same registration before)."""
    register = getattr(module, 'register_load_state_dict_pre_hook', None)
    if register is not None:
        return register(hook)
    return module._register_load_state_dict_pre_hook(hook, with_module=True)


def connect(anchor: Anchor, model: nn.Module) -> None:
    """Give ``anchor`` what MMEngine knows of ``model``'s run: the iteration
    training starts at, and the check that pretrained weights were
    loaded."""
    anchor.position = StartWatch(model)
    LoadWatch(model, anchor)
