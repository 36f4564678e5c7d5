"""MMEngine's ``FSDPStrategy`` resumes its optimizer on torch >= 2.1.

The bug: ``FSDPStrategy.load_optim_state_dict`` (up to 0.10.7) calls
``FSDP.optim_state_dict_to_load(state_dict, self.model, optimizer)``, the
argument order of torch 2.0; torch 2.1 made it ``(model, optim,
optim_state_dict)`` (the same break reported for Accelerate in
pytorch/pytorch#105727), so every FSDP resume fails with ``unhashable
type: 'dict'``. The fix
replaces that one method with the same call made with keywords, which
every torch >= 2.1 takes; it keeps MMEngine's name and signature. Applied
only where torch's first parameter is ``model`` and MMEngine's call passes
the state dict first.
"""
import inspect


def _fsdp():
    try:
        from mmengine._strategy.fsdp import FSDP, FSDPStrategy
    except ImportError:  # torch built without distributed
        return None, None
    return FSDP, FSDPStrategy


def has_bug() -> bool:
    """MMEngine passes the state dict where torch expects the model."""
    FSDP, FSDPStrategy = _fsdp()
    if FSDPStrategy is None:
        return False
    method = FSDPStrategy.load_optim_state_dict
    if getattr(method, '_olor', False):
        return False
    first = next(
        iter(inspect.signature(FSDP.optim_state_dict_to_load).parameters))
    source = inspect.getsource(method)
    call = source[source.find('optim_state_dict_to_load('):]
    return first == 'model' and call.replace(' ', '').replace(
        '\n', '').startswith('optim_state_dict_to_load(state_dict,')


def apply() -> bool:
    """Replace ``FSDPStrategy.load_optim_state_dict``; idempotent."""
    if not has_bug():
        return False
    FSDP, FSDPStrategy = _fsdp()

    def load_optim_state_dict(self, state_dict: dict) -> None:
        """Load optimizer state from dict (MMEngine's, with torch >= 2.1's
        keyword arguments)."""
        optim_state_dict = FSDP.optim_state_dict_to_load(
            model=self.model,
            optim=self.optim_wrapper.optimizer,
            optim_state_dict=state_dict)
        self.optim_wrapper.load_state_dict(optim_state_dict)

    load_optim_state_dict._olor = True
    load_optim_state_dict.__qualname__ = \
        FSDPStrategy.load_optim_state_dict.__qualname__
    FSDPStrategy.load_optim_state_dict = load_optim_state_dict
    return True
