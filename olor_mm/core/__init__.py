"""The plain-PyTorch core: OLOR's rollback (Eq. 8/9) on any torch
optimizer. Imports nothing of MMEngine.

- :mod:`.rollback`: the rollback maths (foreach lerp toward theta0);
- :mod:`.kernels`: its fused / foreach / per-tensor implementations;
- :mod:`.theta0`: ``Anchor``, theta0 at each tensor's first update, in the
  optimizer's state dict; :mod:`.resume_checks`, what a load is checked
  for; :mod:`.copy_guard`, an anchored optimizer that lost its anchor;
- :mod:`.attach`: the rollback as the optimizer's step hooks;
- :mod:`.importance`: the importance-weighted rollback (each element's
  pull ``lam_eff * w``, ``w`` from the upstream Fisher);
- :mod:`.penalty`: the L2-SP and EWC penalties, anchors too;
- :mod:`.param_groups`: layer-wise param groups carrying ``rollback``;
- :mod:`.lr_decay`: layer-wise learning-rate decay;
- :mod:`.drift`, :mod:`.norms`: distance to theta0;
- :mod:`.fisher`: EWC's (and the importance-weighted rollback's) diagonal
  Fisher.
"""
