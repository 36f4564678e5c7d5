"""OLOR under MMEngine's FSDPStrategy (FlexibleRunner): sharded theta0.

With ``use_orig_params=True`` and MMEngine's default ``local`` state dict,
each rank's parameters are flat slices; theta0, a copy of them taken on each
rank, is sliced identically, so each rank anchors and rolls back its own
slice with no communication. This module patches
``mmengine._strategy.fsdp.FSDPStrategy`` so that the slice is saved in the
rank's own checkpoint file and restored on resume. The ``full`` state dict
would gather the optimizer state but not theta0: building an anchored
optimizer under it is refused.

Restoring needs ``FSDP.optim_state_dict_to_load``; MMEngine (up to 0.10.7)
calls it with the argument order of torch < 2.1, so its own resume fails on
current torch (``unhashable type: 'dict'``); the replacement here calls it
with keywords, which every supported torch (>= 2.1) takes.
"""
from ..core.theta0 import LEGACY_STATE_KEY, find_anchor
from .training_start import start_training


def shard_theta0_with_fsdp() -> None:
    """Save and restore sharded theta0 through FSDPStrategy. Idempotent.

    Patches ``mmengine._strategy.fsdp.FSDPStrategy``:
    ``build_optim_wrapper`` refuses an anchored optimizer (OLOR, L2-SP)
    under the ``full`` state dict, ``optim_state_dict``
    adds the anchor's entry (the rank's theta0 shards) to what
    ``FSDP.optim_state_dict`` returns, ``load_optim_state_dict`` calls
    ``FSDP.optim_state_dict_to_load`` with torch's keyword arguments and puts
    the entry back before the wrapper loads it, and ``resume`` reaches
    training start (:func:`olor_mm.engine.training_start.start_training`:
    it refuses to go on without a restored theta0,
    ``resume_optimizer=False``), as the Runner's ``initialize_count_status``
    does.
    """
    try:
        from mmengine._strategy.fsdp import FSDP, FSDPStrategy
    except ImportError:  # torch without FSDP
        return
    if getattr(FSDPStrategy.load_optim_state_dict, '_olor', False):
        return
    original_save = FSDPStrategy.optim_state_dict
    original_build = FSDPStrategy.build_optim_wrapper
    original_resume = FSDPStrategy.resume

    def build_optim_wrapper(self, optim_wrapper, model=None):
        built = original_build(self, optim_wrapper, model)
        anchor = find_anchor(built.optimizer)
        if (anchor is not None and anchor.active
                and self._is_full_state_dict()):
            raise NotImplementedError(
                f'The {anchor.owner} under FSDP keeps theta0 sharded '
                "like the parameters and saves it with the 'local' state "
                "dict only; set strategy.state_dict_cfg='local' (MMEngine's "
                'default).')
        return built

    def optim_state_dict(self) -> dict:
        state = original_save(self)
        anchor = find_anchor(self.optim_wrapper.optimizer)
        if anchor is not None and anchor.active:
            state[anchor.state_key] = anchor.state_entry()
        return state

    def load_optim_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        anchor = find_anchor(self.optim_wrapper.optimizer)
        entries = {
            key: state_dict.pop(key)
            for key in ({anchor.state_key} if anchor else set())
            | {LEGACY_STATE_KEY} if key in state_dict
        }
        optim_state = FSDP.optim_state_dict_to_load(
            model=self.model,
            optim=self.optim_wrapper.optimizer,
            optim_state_dict=state_dict)
        optim_state.update(entries)
        self.optim_wrapper.load_state_dict(optim_state)

    def resume(self, filename, *args, **kwargs):
        checkpoint = original_resume(self, filename, *args, **kwargs)
        wrapper = getattr(self, 'optim_wrapper', None)
        if wrapper is not None:
            start_training(
                wrapper,
                checkpoint['meta'].get('iter', 0),
                where=f' from {filename}')
        return checkpoint

    optim_state_dict._olor = load_optim_state_dict._olor = True
    FSDPStrategy.build_optim_wrapper = build_optim_wrapper
    FSDPStrategy.optim_state_dict = optim_state_dict
    FSDPStrategy.load_optim_state_dict = load_optim_state_dict
    FSDPStrategy.resume = resume
