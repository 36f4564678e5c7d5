"""Small MMEngine trainings that use nothing of olor-mm, for the test that
importing olor-mm changes none of their results (tests/test_import.py).

``python stack_probe.py OUT_DIR [--import-olor-mm]`` runs, in one process
(importing olor_mm first with the flag):

- ``runner``: MMEngine's Runner with ``load_from``, a param scheduler, the
  EMA hook, checkpoints every 2 iterations, then a resume to iteration 6;
- ``two_optimizers``: the Runner with an ``OptimWrapperDict`` of two
  optimizers (a model that steps each part with its own), checkpointed and
  resumed;
- ``flexible``: FlexibleRunner (its single-device strategy) with
  ``load_from`` and gradient accumulation, then resumed;

and writes ``OUT_DIR/result.pth``: per training the final weights, the
message hub's logged scalars and runtime info, and the state of every
checkpoint (model, optimizer, schedulers, message hub, EMA), with the work
dir's path and the wall-clock entries (times, timestamps) taken out.
"""
import os.path as osp
import sys

import torch
import torch.nn as nn

if '--import-olor-mm' in sys.argv:
    import olor_mm  # noqa: F401  (first, as a config's custom_imports does)

from mmengine.model import BaseModel  # noqa: E402
from mmengine.optim import OptimWrapper, OptimWrapperDict  # noqa: E402
from mmengine.registry import MODELS  # noqa: E402
from mmengine.runner import FlexibleRunner, Runner  # noqa: E402

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from toy import ToyClassifier, pretrained_checkpoint, runner_cfg  # noqa

#: entries that hold wall-clock time or a run's timestamped name
CLOCK = ('time', 'data_time', 'eta', 'experiment_name', 'timestamp')


@MODELS.register_module(force=True)
class TwoPartToy(BaseModel):
    """Two parts, each stepped by its own optimizer (a GAN's pattern)."""

    def __init__(self):
        super().__init__()
        self.a = ToyClassifier(norm=False)
        self.b = nn.Linear(3, 3)

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.b(self.a(inputs))
        if mode == 'loss':
            labels = torch.stack(labels) if isinstance(labels,
                                                       list) else labels
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        return logits

    def train_step(self, data, optim_wrapper):
        data = self.data_preprocessor(data, True)
        log = {}
        for part in ('a', 'b'):
            with optim_wrapper[part].optim_context(self):
                losses = self._run_forward(data, mode='loss')
            loss, log_vars = self.parse_losses(losses)
            optim_wrapper[part].update_params(loss)
            log.update({f'{part}_{k}': v for k, v in log_vars.items()})
        return log


def _clean(value, work_dir):
    """``value`` without the output folder's path (``OUT_DIR``: the work
    dir's parent, which holds the pretrained checkpoint too) and without
    wall-clock entries."""
    return _without(value, osp.dirname(work_dir))


def _without(value, out):
    if isinstance(value, dict):
        return {
            k: _without(v, out)
            for k, v in value.items() if not any(c in str(k) for c in CLOCK)
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_without(v, out) for v in value)
    if isinstance(value, str):
        return value.replace(out, '<out>')
    return value


def _hub(runner, work_dir):
    hub = runner.message_hub
    return _clean(
        dict(
            scalars={
                k: [float(x) for x in v.data[0]]
                for k, v in hub.log_scalars.items()
            },
            info=hub.runtime_info), work_dir)


def _checkpoints(work_dir):
    out = {}
    for name in sorted(('iter_2.pth', 'iter_4.pth', 'iter_6.pth')):
        path = osp.join(work_dir, name)
        if osp.isfile(path):
            ckpt = torch.load(path, map_location='cpu', weights_only=False)
            ckpt['meta'].pop('cfg', None)  # the config's text, paths in it
            ckpt['message_hub'] = _clean(
                dict(
                    scalars={
                        k: [float(x) for x in v.data[0]]
                        for k, v in ckpt['message_hub']['log_scalars'].items()
                    },
                    info=ckpt['message_hub']['runtime_info']), work_dir)
            out[name] = _clean(ckpt, work_dir)
    return out


def _record(runner, work_dir):
    model = runner.model.module if hasattr(runner.model,
                                           'module') else runner.model
    return dict(
        weights={k: v.detach().clone()
                 for k, v in model.state_dict().items()},
        hub=_hub(runner, work_dir),
        checkpoints=_checkpoints(work_dir))


def _sgd():
    return dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))


def _cfg(work, wrapper, iters, **kw):
    """The toy's runner config: a line per iteration, a checkpoint every 2,
    no custom imports (nothing of olor-mm is asked for)."""
    kw.setdefault('model', dict(type='ToyClassifier', norm=False))
    return runner_cfg(
        work,
        wrapper,
        max_iters=iters,
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        custom_imports=dict(imports=[], allow_failed_imports=False),
        **kw)


def run_runner(out, path):
    work = osp.join(out, 'runner')

    def cfg(iters, **kw):
        return _cfg(
            work,
            _sgd(),
            iters,
            param_scheduler=[
                dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=3),
                dict(type='MultiStepLR', milestones=[4], by_epoch=False)
            ],
            custom_hooks=[dict(type='EMAHook', momentum=0.1)],
            **kw)

    Runner.from_cfg(cfg(4, load_from=path)).train()
    runner = Runner.from_cfg(cfg(6, resume=True))
    runner.train()
    return _record(runner, work)


def run_two_optimizers(out, path):
    work = osp.join(out, 'two_optimizers')

    def build(iters, **kw):
        model = TwoPartToy()
        wrappers = OptimWrapperDict(
            a=OptimWrapper(torch.optim.SGD(model.a.parameters(), lr=0.01)),
            b=OptimWrapper(torch.optim.Adam(model.b.parameters(), lr=1e-3)))
        cfg = _cfg(work, wrappers, iters, model=model, **kw)
        cfg.pop('custom_imports')  # Runner's own arguments only
        return Runner(**cfg)

    build(4).train()
    runner = build(6, resume=True)
    runner.train()
    return _record(runner, work)


def run_flexible(out, path):
    work = osp.join(out, 'flexible')

    def cfg(iters, **kw):
        return _cfg(work, dict(_sgd(), accumulative_counts=2), iters, **kw)

    FlexibleRunner.from_cfg(cfg(4, load_from=path)).train()
    runner = FlexibleRunner.from_cfg(cfg(6, resume=True))
    runner.train()
    return _record(runner, work)


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    path, _ = pretrained_checkpoint(_Path(out), norm=False)
    result = dict(
        olor_mm_imported='olor_mm' in sys.modules,
        runner=run_runner(out, path),
        two_optimizers=run_two_optimizers(out, path),
        flexible=run_flexible(out, path))
    torch.save(result, osp.join(out, 'result.pth'))


class _Path(str):
    """``tmp_path / name`` for :func:`toy.pretrained_checkpoint`."""

    def __truediv__(self, name):
        return osp.join(self, name)


if __name__ == '__main__':
    main()
