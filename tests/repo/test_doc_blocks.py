"""Every config and command block of README.md and docs/*.md, executed.

A copied example must never fail. Each fenced block is one of:

- a **config** (Python with a top-level ``_base_``, ``optim_wrapper``,
  ``custom_hooks``, ``runner_type``, ...): loaded with MMEngine's
  ``Config.fromfile`` (a fragment on top of the demo's OLOR config), its
  model and optim wrapper built (the rollback attached), its hooks built;
  the README's configs are smoke-trained with ``tools/smoke_train.py``;
- **Python code**: run, then checked (theta0 taken, weight decay where the
  block says);
- **bash**: each command either runs here (those that take seconds) or is
  in :data:`NOT_RUN` with the reason; those are checked without running:
  the script exists and accepts every flag shown (its ``--help``), a make
  target exists (``make -n``), an extra is declared;
- ``text`` (output, diagrams) or ``bibtex``: not code.

A block of another kind, or a command that is neither run nor listed,
fails :func:`test_every_block_is_known`: a new example gets a check.
"""
import glob
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from paths import ROOT, TESTS

import olor_mm  # noqa: F401  (resolves olor_mm:: bases, as olor-mm's tools)

DOCS = ['README.md'] + sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs', '*.md')))
#: the base a config fragment (no _base_) is loaded on
FRAGMENT_BASE = osp.join(ROOT, 'configs', 'demo',
                         'mask-rcnn_r18-tiny_demo-downstream_olor.py')
ENV = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join([ROOT, TESTS,
                                os.environ.get('PYTHONPATH', '')]),
    OMP_NUM_THREADS='1')
#: the one edit made to a block before it runs: nothing is downloaded
SUBSTITUTIONS = [('pretrained=True', 'pretrained=False')]


# ------------------------------------------------------------- the blocks
def fenced_blocks():
    """``(file, line, lang, text)`` of every fenced block, dedented."""
    out = []
    for doc in DOCS:
        lines = open(osp.join(ROOT, doc)).read().split('\n')
        k = 0
        while k < len(lines):
            m = re.match(r'^(\s*)```(\w*)\s*$', lines[k])
            if m:
                end = k + 1
                while not re.match(r'^\s*```\s*$', lines[end]):
                    end += 1
                text = textwrap.dedent('\n'.join(lines[k + 1:end]))
                out.append((doc, k + 1, m.group(2), text))
                k = end
            k += 1
    return out


BLOCKS = fenced_blocks()
CONFIG_RE = re.compile(
    r'^(_base_|optim_wrapper|custom_hooks|custom_imports|runner_type|'
    r'strategy)\s*=', re.M)


def is_config(text: str) -> bool:
    return bool(CONFIG_RE.search(text))


def block_id(block) -> str:
    return f'{block[0]}:{block[1]}'


def commands(text: str):
    """The commands of a bash block: continuations joined, comments and
    blank lines dropped; ``VAR=value`` lines expand later ``$VAR``."""
    joined = re.sub(r'\\\n\s*', ' ', text)
    env, out = {}, []
    for line in joined.split('\n'):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        line = re.sub(r'\s+#\s[^"\']*$', '', line)  # a trailing comment
        assign = re.fullmatch(r'([A-Z_]+)=(\S+)', line)
        if assign:
            env[assign.group(1)] = assign.group(2)
            continue
        for name, value in env.items():
            line = line.replace(f'${name}', value)
        out.append(line)
    return out


CONFIG_BLOCKS = [b for b in BLOCKS if b[2] == 'python' and is_config(b[3])]
CODE_BLOCKS = [b for b in BLOCKS if b[2] == 'python' and not is_config(b[3])]
COMMANDS = [(block_id(b), c) for b in BLOCKS if b[2] == 'bash'
            for c in commands(b[3])]

#: commands run here, each in seconds: pattern -> check in test_command_runs
RUN = {
    'print_layers': (r'^python (tools/analysis_tools/print_layers\.py'
                     r'|-m olor_mm\.tools\.print_layers) '),
    'publish':
    r'^python tools/model_converters/publish_model\.py ',
    'make_demo_data':
    r'^python tools/make_demo_data\.py ',
}
#: commands not run by the suite: pattern -> why; each is checked without
#: running (test_a_command_not_run_is_still_right)
NOT_RUN = {
    r'^make quickstart$':
    'minutes; tools/quickstart.py runs here with '
    'fewer iterations (test_quickstart_runs)',
    r'\bmake (test|demo|forgetting)\b':
    'the whole suite, the '
    'demo (43 min on 2 cores), the benchmark (35 min)',
    r'^pip install ':
    'installs from the package index; '
    'tests/repo/test_packaging.py installs the wheel',
    r'^python benchmarks/forgetting\.py':
    '30 to 94 minutes',
    r'^python tools/train\.py configs/mmdet/mask-rcnn_r50_fpn_olor_custom':
    'downloads the COCO checkpoint; its data command runs here',
    r'^python \$\(python -c':
    "MMDetection's tools/train.py on a full "
    'config: a GPU job (tests/e2e/test_mmdet.py runs it on a demo config)',
    r'^mim train ':
    'openmim is not installed here; a GPU job',
    r'^(\S+=\S* )*tools/(dist|slurm)_train\.sh ':
    'a cluster job (tests/e2e/test_distributed.py runs dist_train.sh and '
    'slurm_train.sh, with a stand-in srun, on 2 CPU processes)',
    r'^python tools/smoke_train\.py CONFIG':
    'a synopsis: every shipped '
    'config is smoke-trained by tests/e2e/test_smoke_configs.py',
    r'^python tools/train\.py configs/demo/\S+ --amp':
    'a measurement of 3 minutes; '
    'tests/e2e/test_mmdet.py trains --amp on the CPU',
    r'^python tools/analysis_tools/forgetting\.py':
    'a sweep of fine-tunings of a COCO model (a GPU job); '
    'tests/tools/test_forgetting.py runs the tool on the demo configs',
    r'^python tools/analysis_tools/plot_drift\.py':
    "needs a run's logs "
    '(tests/core/test_drift.py plots them)',
    r'^git clone ':
    'reaches the network',
    r'^bash benchmarks/mmengine_suite\.sh':
    "MMEngine's own tests, twice (2 minutes; run 2026-12-07, the "
    'result in docs/reliability.md)',
}


def test_every_block_is_known():
    kinds = {'python', 'bash', 'text', 'bibtex'}
    odd = [block_id(b) for b in BLOCKS if b[2] not in kinds]
    assert not odd, f'blocks without a known language (use text): {odd}'
    unknown = [(where, c) for where, c in COMMANDS
               if not any(re.search(p, c) for p in RUN.values()) and not any(
                   re.search(p, c) for p in NOT_RUN)]
    assert not unknown, f'commands neither run nor listed: {unknown}'
    assert len(CONFIG_BLOCKS) >= 6 and len(CODE_BLOCKS) >= 2


# ------------------------------------------------------------- configs
def write_config(block, folder) -> str:
    """The block as a config file; a fragment goes on the demo config."""
    text = block[3].replace(
        "'../_base_/",
        repr(osp.join(ROOT, 'configs', '_base_'))[:-1] + '/')
    if not re.search(r'^_base_\s*=', text, re.M):
        text = f'_base_ = [{FRAGMENT_BASE!r}]\n' + text
    path = osp.join(folder, f'block_{block[1]}.py')
    with open(path, 'w') as f:
        f.write(text)
    return path


@pytest.mark.parametrize('block', CONFIG_BLOCKS, ids=block_id)
def test_config_block_builds(block, tmp_path):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import HOOKS, DefaultScope

    from olor_mm.core.copy_guard import ATTACHED
    from olor_mm.tools.pretrained import build_model
    cfg = Config.fromfile(write_config(block, str(tmp_path)))
    if cfg.get('runner_type') == 'FlexibleRunner':  # FSDP: needs processes
        assert cfg.strategy.model_wrapper.use_orig_params is True
        return
    scope = cfg.get('default_scope', 'mmdet')
    with DefaultScope.overwrite_default_scope(scope):
        model = build_model(cfg)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        hooks = [HOOKS.build(h) for h in cfg.get('custom_hooks', [])]
    (anchor, ) = ATTACHED[wrapper.optimizer].values()
    assert anchor.trainable  # the rollback (or L2-SP) is attached
    if 'custom_hooks' in block[3]:
        assert any(type(h).__name__ == 'RollbackDriftHook' for h in hooks)
    if 'vis_backends' in block[3]:  # built as the Runner does (lazily)
        from mmengine.registry import VISBACKENDS
        backends = [
            VISBACKENDS.build(dict(b, save_dir=str(tmp_path)))
            for b in cfg.visualizer.vis_backends
        ]
        assert [type(b).__name__ for b in backends
                ] == [b['type'] for b in cfg.visualizer.vis_backends]


#: README config blocks that inherit a shipped config's OLOR block
#: unchanged: they build to that config, which tests/e2e/test_smoke_configs.py
#: smoke-trains (test_readme_block_is_the_shipped_config checks the match)
#: README config blocks that are a shipped config in another spelling: the
#: block imports olor_mm/configs/olor.py, the shipped config inherits
#: configs/_base_/olor.py; the test holds the two blocks equal
SHIPPED_AS = {
    'from olor_mm.configs.olor import':
    osp.join(ROOT, 'configs', 'mmdet', 'mask-rcnn_r50_fpn_olor_1x_coco.py')
}


def _shipped(block):
    return next((path for key, path in SHIPPED_AS.items() if key in block[3]),
                None)


@pytest.mark.parametrize(
    'block', [b for b in CONFIG_BLOCKS if b[0] == 'README.md' and _shipped(b)],
    ids=block_id)
def test_readme_block_is_the_shipped_config(block, tmp_path):

    def plain(value):  # without the _scope_ MMEngine adds to imported bases
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k != '_scope_'}
        if isinstance(value, (list, tuple)):
            return type(value)(plain(v) for v in value)
        return value

    mine = Config.fromfile(write_config(block, str(tmp_path))).to_dict()
    shipped = Config.fromfile(_shipped(block)).to_dict()
    for key in ('model', 'optim_wrapper', 'custom_hooks', 'param_scheduler',
                'custom_imports', 'olor_optim_wrapper'):
        assert plain(mine[key]) == plain(shipped[key]), key


@pytest.mark.parametrize(
    'block',
    [b for b in CONFIG_BLOCKS if b[0] == 'README.md' and not _shipped(b)],
    ids=block_id)
def test_readme_config_block_smoke_trains(block, tmp_path):
    config = write_config(block, str(tmp_path))
    out = tool(
        'tools/smoke_train.py',
        config,
        '--work-dir',
        str(tmp_path / 'smoke'),
        timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 'checks passed' in out.stdout


# ---------------------------------------------------------- Python code
def run_code(block) -> dict:
    code = block[3]
    for old, new in SUBSTITUTIONS:
        code = code.replace(old, new)
    namespace = {'__name__': f'doc_block_{block[1]}'}
    exec(compile(code, block_id(block), 'exec'), namespace)
    return namespace


def test_readme_plain_pytorch_block_rolls_back_with_decay_on_the_head():
    (block, ) = [
        b for b in CODE_BLOCKS
        if b[0] == 'README.md' and 'attach_rollback' in b[3]
    ]
    import torchvision_stand_in
    stand_in = not torchvision_stand_in.torchvision_imports()
    if stand_in:
        torchvision_stand_in.install()
    try:
        ns = run_code(block)
    finally:
        if stand_in:
            torchvision_stand_in.uninstall()
    model, opt, handle = ns['model'], ns['opt'], ns['handle']
    head = set(map(id, model.get_classifier().parameters()))
    for g in opt.param_groups:
        is_head = bool(head & set(map(id, g['params'])))
        assert (g['layer_id'] is None) == is_head
        assert g['weight_decay'] == (0.05 if is_head else 0.0)
    before = [p.detach().clone() for p in handle.anchored_params]
    model(torch.rand(2, 3, 64, 64)).sum().backward()
    opt.step()
    for t, p in zip(handle.theta0, before):
        torch.testing.assert_close(t, p)


def test_usage_scheme_block_registers_the_scheme():
    (block, ) = [b for b in CODE_BLOCKS if 'register_layer_scheme' in b[3]]
    from olor_mm.layers.layer_schemes import find_scheme
    ns = run_code(block)
    assert find_scheme(ns['MyBackbone']) is not None


def test_every_code_block_is_run():
    checked = [
        b for b in CODE_BLOCKS
        if 'attach_rollback' in b[3] or 'register_layer_scheme' in b[3]
    ]
    assert checked == CODE_BLOCKS


# ---------------------------------------------------------- commands
def tool(script: str, *args, cwd: str = ROOT, timeout: int = 300):
    """``python SCRIPT ARGS`` (a path relative to the repository, or
    absolute; or ``-m`` and a module) with this interpreter, its output
    captured."""
    target = [script] if script == '-m' else [osp.join(ROOT, script)]
    return subprocess.run([sys.executable, *target, *args],
                          cwd=cwd,
                          env=ENV,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def run(cmd: str, cwd: str, timeout: int = 300) -> subprocess.CompletedProcess:
    argv = shlex.split(cmd, comments=True)
    if argv[0] == 'python':
        return tool(argv[1], *argv[2:], cwd=cwd, timeout=timeout)
    return subprocess.run(
        argv,
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout)


def matching(key: str):
    return [(w, c) for w, c in COMMANDS if re.search(RUN[key], c)]


@pytest.mark.parametrize(
    'where, cmd', matching('print_layers'), ids=lambda x: str(x)[:60])
def test_print_layers_commands_run(where, cmd):
    out = run(cmd, ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert 'OLOR rolls back' in out.stdout
    options = dict(tok.split('=', 1) for tok in shlex.split(cmd) if '=' in tok)
    if 'optim_wrapper.paramwise_cfg.rollback_max' in options:
        top = options['optim_wrapper.paramwise_cfg.rollback_max']
        assert re.search(rf'^\s+0\s+{float(top):.6f}\s', out.stdout, re.M)


@pytest.mark.parametrize(
    'where, cmd', matching('publish'), ids=lambda x: str(x)[:60])
def test_publish_command_runs(where, cmd, tmp_path):
    from e2e_utils import fine_tuned_checkpoint
    src = shlex.split(cmd)[2]
    os.makedirs(tmp_path / osp.dirname(src))
    fine_tuned_checkpoint(Config.fromfile(FRAGMENT_BASE), str(tmp_path / src))
    out = run(cmd, str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    (published, ) = glob.glob(str(tmp_path / 'olor_model_*-*.pth'))
    assert osp.getsize(published) < osp.getsize(tmp_path / src)


def test_make_demo_data_command_runs(tmp_path):
    ((where, cmd), ) = matching('make_demo_data')
    out = run(cmd, str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert glob.glob(
        str(tmp_path / 'data' / 'custom' / '**' / '*.json'), recursive=True)


def test_quickstart_runs(tmp_path):
    """``make quickstart`` is ``tools/quickstart.py``: here with a few
    iterations, to its last line (with lam = 1 at the stem: four steps in
    the warm-up, at 2 % of the lr, roll back little otherwise)."""
    out = tool(
        'tools/quickstart.py',
        '--work-dir',
        str(tmp_path),
        '--pretrain-iters',
        '4',
        '--finetune-iters',
        '4',
        '--rollback-max',
        '1',
        timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 'drift.backbone.stem' in out.stdout
    assert re.search(r'\[4/4\] loss [\d.]+', out.stdout), out.stdout[-2000:]
    found = re.search(
        r'drift.backbone.stem: ([\d.e+-]+) with OLOR, ([\d.e+-]+) without',
        out.stdout)
    assert found, out.stdout[-2000:]
    olor, plain = map(float, found.groups())
    # the same start, data and seed: only the rollback differs
    assert 0 < olor < plain


_HELP = {}


def help_text(script: str) -> str:
    if script not in _HELP:
        out = tool(script, '--help')
        assert out.returncode == 0, out.stderr[-2000:]
        _HELP[script] = out.stdout
    return _HELP[script]


def help_flags(script: str) -> set:
    """The flags a script's ``--help`` lists, as whole tokens (``--iters``
    is not taken for ``--iters-scale``)."""
    return set(re.findall(r'(?<![\w-])--\w[\w-]*', help_text(script)))


def flags(argv):
    return [
        t.strip('[]').split('=')[0] for t in argv
        if t.strip('[]').startswith('--')
    ]


NOT_RUN_COMMANDS = [(w, c) for w, c in COMMANDS
                    if not any(re.search(p, c) for p in RUN.values())]


@pytest.mark.parametrize(
    'where, cmd', NOT_RUN_COMMANDS, ids=lambda x: str(x)[:60])
def test_a_command_not_run_is_still_right(where, cmd):
    """The script or target exists and takes every flag shown."""
    argv = shlex.split(cmd, comments=True)
    while argv and re.fullmatch(r'[A-Z_]+=.*', argv[0]):
        argv.pop(0)  # VAR=value prefixes
    if argv[0] == 'make':
        targets = [a for a in argv[1:] if '=' not in a]
        out = subprocess.run(
            ['make', '-n'] + argv[1:],
            cwd=ROOT,
            capture_output=True,
            text=True)
        assert out.returncode == 0 and targets, out.stderr
    elif argv[0] == 'pip':  # the extras shown are declared
        project = open(osp.join(ROOT, 'pyproject.toml')).read()
        extras = re.findall(r'\.\[(\w+)\]', cmd)
        assert extras and all(
            re.search(rf'^{e} = ', project, re.M) for e in extras), extras
    elif argv[0] == 'mim':
        assert osp.isfile(osp.join(ROOT, argv[3]))
    elif argv[0].startswith('tools/') and argv[0].endswith('.sh'):
        script = osp.join(ROOT, argv[0])
        assert os.access(script, os.X_OK)
        train = help_flags(osp.join(ROOT, 'tools', 'train.py'))
        assert set(flags(argv)) <= train, set(flags(argv)) - train
    elif argv[0] == 'git':  # a clone of a public repository at a tag
        assert argv[1:3] == ['clone', '-b'] and argv[4].startswith('https://')
    elif argv[0] == 'bash':  # a script of the repository
        assert os.access(osp.join(ROOT, argv[1]), os.X_OK), argv[1]
    elif argv[0] == 'python':
        script = argv[1]
        if script.startswith('$('):  # upstream's train.py
            import mmdet
            script = osp.join(
                osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
            config = next(a for a in argv if a.startswith('configs/'))
            assert osp.isfile(osp.join(ROOT, config))
        else:
            script = osp.join(ROOT, script)
        known = help_flags(script)
        missing = [f for f in flags(argv) if f not in known]
        assert not missing, f'{script} does not take {missing}'
        for arg in argv[2:]:
            if arg.startswith('configs/'):
                Config.fromfile(osp.join(ROOT, arg))
    else:
        pytest.fail(f'no check for {cmd!r}')


# ------------------------------------------------------- links, length
def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r'[`*]', '', heading.strip().lower())  # keeps _
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


@pytest.mark.parametrize('doc', DOCS)
def test_every_relative_link_and_anchor_resolves(doc):
    text = open(osp.join(ROOT, doc)).read()
    text = re.sub(r'```.*?```', '', text, flags=re.S)
    bad = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'[a-z]+://', target):
            continue
        path, _, anchor = target.partition('#')
        file = osp.normpath(osp.join(ROOT, osp.dirname(doc), path)) \
            if path else osp.join(ROOT, doc)
        if not osp.exists(file):
            bad.append(target)
            continue
        if anchor and file.endswith('.md'):
            headings = re.findall(r'^#+ (.*)$', open(file).read(), re.M)
            if anchor not in {slug(h) for h in headings}:
                bad.append(target)
    assert not bad, f'{doc}: dead links {bad}'


def test_readme_is_at_most_1500_words():
    words = len(open(osp.join(ROOT, 'README.md')).read().split())
    assert words <= 1500, words
