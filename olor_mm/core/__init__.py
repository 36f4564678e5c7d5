"""The plain-PyTorch core: OLOR's rollback (Eq. 8/9) on any torch
optimizer. Imports nothing of MMEngine.

- :mod:`.rollback`: the rollback maths (foreach lerp toward theta0);
- :mod:`.kernels`: its fused / foreach / per-tensor implementations;
- :mod:`.theta0`: ``Anchor``, theta0 in the optimizer's state dict;
- :mod:`.attach`: the rollback as the optimizer's step hooks;
- :mod:`.param_groups`: layer-wise param groups carrying ``rollback``;
- :mod:`.lr_decay`: layer-wise learning-rate decay;
- :mod:`.drift`, :mod:`.norms`: distance to theta0;
- :mod:`.fisher`: EWC's diagonal Fisher.
"""
