# configs/_base_/olor.py for MMSegmentation: its tools/train.py --amp accepts
# only type='OptimWrapper' (and rewrites it to AmpOptimWrapper); the
# constructor attaches the rollback to the optimizer under both.
_base_ = './olor.py'
olor_optim_wrapper = dict(type='OptimWrapper')
