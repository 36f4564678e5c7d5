"""Saving MMEngine's checkpoints so that a kill at any instant leaves one.

The bug: MMEngine's ``CheckpointHook`` (up to 0.10.7) removes the oldest
checkpoint *before* writing the new one, writes the new one in place, and
only then updates ``last_checkpoint``. With ``max_keep_ckpts=1`` a SIGKILL
during the write leaves a work dir whose only checkpoint is truncated and a
``last_checkpoint`` naming a deleted file: ``--resume`` fails, and every
iteration trained is lost.

The fix reorders the same steps, on a local disk only (MMEngine's own code
runs for any other storage backend): the new checkpoint is written under a
temporary name in the same folder and renamed into place when complete
(``os.replace``, atomic), then ``last_checkpoint`` is rewritten the same
way, and only then are checkpoints beyond ``max_keep_ckpts`` removed. At
every instant ``last_checkpoint`` names a complete file. The bookkeeping
MMEngine saves in the checkpoint (``keep_ckpt_ids``, ``last_ckpt``) is
unchanged.
"""
import glob
import inspect
import os
import os.path as osp

#: suffix of a checkpoint being written
PART = '.part'


def has_bug() -> bool:
    """The installed CheckpointHook removes old checkpoints before saving."""
    from mmengine.hooks import CheckpointHook
    method = CheckpointHook._save_checkpoint_with_step
    if getattr(method, '_olor_safe', False):
        return False
    source = inspect.getsource(method)
    return 0 <= source.find('.remove(') < source.find('save_checkpoint(')


def _write_atomic(path: str, text: str) -> None:
    part = path + PART
    with open(part, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


def _remove(file_backend, path: str) -> None:
    if file_backend.isfile(path):
        file_backend.remove(path)
    elif file_backend.isdir(path):  # DeepSpeed writes directories
        file_backend.rmtree(path)


def _optimizers(runner) -> list:
    """The torch optimizers of the runner's optim wrapper(s)."""
    wrapper = getattr(runner, 'optim_wrapper', None)
    wrappers = wrapper.values() if hasattr(wrapper, 'values') else [wrapper]
    return [
        w.optimizer for w in wrappers
        if getattr(w, 'optimizer', None) is not None
    ]


def apply() -> bool:
    """Replace ``CheckpointHook._save_checkpoint_with_step``; idempotent."""
    if not has_bug():
        return False
    from mmengine.dist import is_main_process
    from mmengine.fileio import LocalBackend
    from mmengine.hooks import CheckpointHook

    from ..core.theta0 import note_saved_checkpoint
    original = CheckpointHook._save_checkpoint_with_step

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return original(self, runner, step, meta)
        # the same bookkeeping as MMEngine's, the removal deferred
        remove = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                remove.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        name = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, name)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        if is_main_process():  # what a kill left half-written before
            for stale in glob.glob(osp.join(self.out_dir, '*' + PART)):
                os.remove(stale)
        runner.save_checkpoint(
            self.out_dir,
            name + PART,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        os.replace(self.last_ckpt + PART, self.last_ckpt)
        _write_atomic(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        note_saved_checkpoint(self.last_ckpt, _optimizers(runner))
        for old in remove:
            _remove(
                self.file_backend,
                self.file_backend.join_path(self.out_dir,
                                            self.filename_tmpl.format(old)))

    _save_checkpoint_with_step._olor_safe = True
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
    return True
