# MMEngine Runner (iteration-based, tiny model, RAdam + LayerwiseRollbackConstructor, warm-up + cosine), stopped at
# iteration 4 of 8 and resumed (resume=True) vs a straight 8-iteration run: reliability.md "An iteration-based run
# stopped at iteration k and resumed equals the straight run bit for bit (Runner, OLOR ...)"
import logging as _lg
from mmengine.runner import Runner
from mmengine.model import BaseModel
from mmengine.dataset import DefaultSampler
from mmengine.registry import MODELS, DATASETS
from torch.utils.data import Dataset

@MODELS.register_module(force=True)
class P4Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
        self.head = nn.Linear(8, 1)

    def forward(self, inputs, targets=None, mode='loss'):
        out = self.head(self.backbone(torch.stack(inputs) if isinstance(inputs, list) else inputs))
        if mode == 'loss':
            t = torch.stack(targets) if isinstance(targets, list) else targets
            return dict(loss=(out - t).pow(2).mean())
        return out

@DATASETS.register_module(force=True)
class P4Data(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 4, generator=g); self.y = torch.randn(32, 1, generator=g)

    def __len__(self):
        return 32

    def __getitem__(self, i):
        return dict(inputs=self.x[i], targets=self.y[i])

def cfg(work_dir, max_iters, resume):
    return dict(
        model=dict(type='P4Toy'), work_dir=work_dir,
        train_dataloader=dict(dataset=dict(type='P4Data'), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=4, num_workers=0, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='RAdam', lr=1e-2),
                           constructor='LayerwiseRollbackConstructor',
                           paramwise_cfg=dict(rollback_max=0.2, pretrained_prefixes=('backbone',))),
        param_scheduler=[dict(type='LinearLR', start_factor=0.2, by_epoch=False, begin=0, end=3),
                         dict(type='CosineAnnealingLR', by_epoch=False, begin=3, end=8, T_max=5)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=100)),
        load_from=None, resume=resume, randomness=dict(seed=0), log_level='ERROR',
        default_scope=None, experiment_name=f'p4e13_{os.path.basename(work_dir)}_{max_iters}_{resume}')
import warnings as _w; _w.simplefilter('ignore')
with tempfile.TemporaryDirectory() as d:
    torch.manual_seed(0)
    rS = Runner(**cfg(f'{d}/straight', 8, False)); rS.train()
    wS = {k: v.clone() for k, v in rS.model.state_dict().items()}
    torch.manual_seed(0)
    r1 = Runner(**cfg(f'{d}/split', 4, False)); r1.train()
    torch.manual_seed(1)
    r2 = Runner(**cfg(f'{d}/split', 8, True)); r2.train()
    w2 = r2.model.state_dict()
    diff = max((wS[k].double() - w2[k].double()).abs().max().item() for k in wS)
    if diff == 0:
        verdict('good', 'Runner with RAdam + warm-up/cosine, stopped at 4 and resumed to 8: bit-identical to the straight run')
    verdict('silent', f'Runner resume differs from the straight run by {diff:.3e}')
