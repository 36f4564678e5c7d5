"""The checkpoint hook olor-mm's ``tools/train.py`` runs: a kill at any
instant leaves the last complete checkpoint.

MMEngine's ``CheckpointHook`` (up to 0.10.7) removes the oldest checkpoint
*before* writing the new one, writes the new one in place, and only then
updates ``last_checkpoint``. With ``max_keep_ckpts=1`` a SIGKILL during
the write leaves a work dir whose only checkpoint is truncated and a
``last_checkpoint`` naming a deleted file: ``--resume`` fails, and every
iteration trained is lost.

:class:`SafeCheckpointHook` is that hook with the same steps reordered, on
a local disk (MMEngine's own order for any other storage backend, and for
DeepSpeed, whose engine writes its own ``latest`` file): every rank writes
the new checkpoint under a temporary name (``iter_N.pth.part``, a file, or
a folder of per-rank files under FSDP's local state dict); once all ranks
have finished (a barrier), rank 0 renames it into place (``os.replace``,
atomic), rewrites ``last_checkpoint`` the same way, and only then removes
the checkpoints beyond ``max_keep_ckpts``. At every instant
``last_checkpoint`` names a complete checkpoint. A ``.part`` left by a
killed run (file or folder) is removed before the next save starts. The
bookkeeping MMEngine saves in the checkpoint (``keep_ckpt_ids``,
``last_ckpt``) is unchanged.

It is a subclass, used by olor-mm's ``tools/train.py`` only
(:func:`use_safe_checkpoints` puts it in the place of the runner's
``CheckpointHook`` the tool built); MMEngine's ``CheckpointHook`` is not
changed, and the config the run dumps still says ``CheckpointHook``.
"""
import glob
import os
import os.path as osp
import shutil

from mmengine.dist import barrier, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

#: suffix of a checkpoint being written
PART = '.part'


def _write_atomic(path: str, text: str) -> None:
    part = path + PART
    with open(part, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


def _remove(path: str) -> None:
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)  # FSDP's local checkpoints, DeepSpeed's
    elif osp.lexists(path):
        os.remove(path)


class SafeCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook``, writing each checkpoint so that a
    kill never loses the last complete one (see the module)."""

    def _save_checkpoint_with_step(self, runner, step, meta):
        strategy = getattr(runner, 'strategy', None)
        if (not isinstance(self.file_backend, LocalBackend)
                or type(strategy).__name__ == 'DeepSpeedStrategy'):
            return super()._save_checkpoint_with_step(runner, step, meta)
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
                _remove(stale)
        barrier()  # no rank writes before the stale ones are gone
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
        barrier()  # every rank's part is written
        if not is_main_process():
            return
        if osp.isdir(self.last_ckpt) and not osp.islink(self.last_ckpt):
            shutil.rmtree(self.last_ckpt)  # os.replace keeps no folder
        os.replace(self.last_ckpt + PART, self.last_ckpt)
        _write_atomic(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in remove:
            _remove(osp.join(self.out_dir, self.filename_tmpl.format(old)))


def use_safe_checkpoints(runner, cfg) -> None:
    """Let the runner olor-mm's tool built save with a
    :class:`SafeCheckpointHook` where the config asks for MMEngine's own
    ``CheckpointHook`` (a config's own subclass stays): the same options,
    the same priority, in the same place of ``runner.hooks``."""
    hook_cfg = (cfg.get('default_hooks') or {}).get('checkpoint')
    if not hook_cfg or hook_cfg.get('type') not in ('CheckpointHook',
                                                    CheckpointHook):
        return
    hooks = runner.hooks
    for k, hook in enumerate(hooks):
        if type(hook) is CheckpointHook:
            safe = SafeCheckpointHook(
                **{
                    n: v
                    for n, v in hook_cfg.items()
                    if n not in ('type', 'priority', '_scope_')
                })
            safe.priority = hook.priority
            hooks[k] = safe
            return
