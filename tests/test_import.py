"""Importing olor-mm changes nothing of the user's stack (issue 32).

- MMEngine trainings that use nothing of olor-mm (Runner with load_from,
  schedulers, EMA, checkpoints and a resume; an ``OptimWrapperDict`` of two
  optimizers; FlexibleRunner with accumulation) give the same weights, log
  scalars and checkpoint states in a process that imported olor-mm first;
- after ``import olor_mm`` every attribute of MMEngine's runners,
  strategies, checkpoint module, optim package and torch's ``Optimizer``
  (and torch's process-wide optimizer hooks) is the object it was, but for
  the compatibility fixes whose probe found the bug, each named here;
- no module of olor_mm outside ``compat/`` assigns an attribute of an
  object of MMEngine or torch that it did not create.
"""
import ast
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

TESTS = osp.dirname(osp.abspath(__file__))
PACKAGE = osp.join(osp.dirname(TESTS), 'olor_mm')


def _run(*args, env=None):
    out = subprocess.run([sys.executable, *args],
                         capture_output=True,
                         text=True,
                         timeout=600,
                         env=dict(os.environ, **(env or {})))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _assert_same(a, b, where='result'):
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(
            b, dict) and a.keys() == b.keys(), (where, sorted(set(a) ^ set(b)))
        for k in a:
            _assert_same(a[k], b[k], f'{where}[{k!r}]')
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{k}]')
    elif hasattr(a, 'state_dict') and not isinstance(a, type):
        _assert_same(a.state_dict(), b.state_dict(), where)
    else:
        assert a == b, (where, a, b)


def test_trainings_without_olor_are_unchanged_by_importing_it(tmp_path):
    """The same trainings in two processes, one of which imported olor_mm
    first: identical to the bit. (torch's own escape hatch lets MMEngine
    alone reload its checkpoints on torch >= 2.6, which olor-mm's
    ``checkpoint`` fix does with weights_only kept.)"""
    env = dict(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')
    results = {}
    for name, flag in (('without', ()), ('with', ('--import-olor-mm', ))):
        out = tmp_path / name
        out.mkdir()
        _run(osp.join(TESTS, 'stack_probe.py'), str(out), *flag, env=env)
        results[name] = torch.load(out / 'result.pth', weights_only=False)
    assert not results['without'].pop('olor_mm_imported')
    assert results['with'].pop('olor_mm_imported')
    for run in ('runner', 'two_optimizers', 'flexible'):
        got = results['with'][run]
        assert got['checkpoints'], run  # the runs saved and resumed
        assert got['hub']['scalars'][
            'train/loss' if run != 'two_optimizers' else 'train/a_loss'], run
        _assert_same(results['without'][run], got, run)


#: what ``import olor_mm`` may change, by compatibility fix: each replaces
#: these attributes, and only where its probe found the bug
FIX_ATTRIBUTES = {
    # MMEngine's register_scheme stores a new, sorted table
    'checkpoint': {
        'mmengine.runner.checkpoint.CheckpointLoader._schemes',
        "mmengine.runner.checkpoint.CheckpointLoader._schemes['']"
    },
    'dist': {
        'mmengine.dist.utils._init_dist_pytorch',
        'mmengine.dist.utils._init_dist_slurm'
    },
    'fsdp_resume':
    {'mmengine._strategy.fsdp.FSDPStrategy.load_optim_state_dict'},
    'config_bases': {
        f'{module}.{name}'
        for module in ('mmengine.utils', 'mmengine.utils.package_utils',
                       'mmengine.config.config', 'mmengine.hub.hub')
        for name in ('is_installed', 'get_installed_path', 'package2module')
    },
}

SNAPSHOT = r'''
import importlib, inspect, json, sys
import torch
import torch.optim.optimizer as topt
import mmengine.optim, mmengine.runner, mmengine.runner.checkpoint
import mmengine.dist.utils, mmengine.utils, mmengine.utils.package_utils
import mmengine.config.config, mmengine.hub.hub
import mmengine._strategy as strategies


def snapshot():
    seen = {}

    def add(prefix, obj):
        for name, value in list(vars(obj).items()):
            seen[f'{prefix}.{name}'] = id(value)

    modules = [mmengine.optim, mmengine.runner.checkpoint,
               mmengine.dist.utils, mmengine.utils,
               mmengine.utils.package_utils, mmengine.config.config,
               mmengine.hub.hub]
    modules += [importlib.import_module(f'mmengine._strategy.{m}')
                for m in ('base', 'single_device', 'distributed', 'fsdp',
                          'deepspeed', 'colossalai', 'utils')
                if importlib.util.find_spec(f'mmengine._strategy.{m}')]
    for module in modules:
        add(module.__name__, module)
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__.startswith(
                    'mmengine'):
                add(f'{module.__name__}.{name}', value)
    for cls in (mmengine.runner.Runner, mmengine.runner.FlexibleRunner,
                torch.optim.Optimizer):
        add(f'{cls.__module__}.{cls.__name__}', cls)
    loader = mmengine.runner.checkpoint.CheckpointLoader
    for scheme, fn in loader._schemes.items():
        seen[f'mmengine.runner.checkpoint.CheckpointLoader._schemes'
             f'[{scheme!r}]'] = id(fn)
    for name in ('_global_optimizer_pre_hooks',
                 '_global_optimizer_post_hooks'):
        seen[f'torch.optim.optimizer.{name}'] = len(getattr(topt, name))
    return seen

before = snapshot()
import olor_mm
from olor_mm import compat
after = snapshot()
changed = sorted(k for k in set(before) | set(after)
                 if before.get(k) != after.get(k))
print(json.dumps(dict(changed=changed, fixed=sorted(compat.APPLIED))))
'''


def test_import_changes_nothing_but_the_probed_fixes(tmp_path):
    """Each attribute that changed belongs to a fix that was applied (its
    probe found the bug here), and nothing else did: no method of the
    runners or strategies, no optimizer hook."""
    script = tmp_path / 'snapshot.py'
    script.write_text(SNAPSHOT)
    report = json.loads(_run(str(script)).strip().splitlines()[-1])
    allowed = set().union(*(FIX_ATTRIBUTES[n] for n in report['fixed']))
    assert set(report['changed']) <= allowed, set(report['changed']) - allowed
    # the fixes this stack needs: each is a change seen above
    assert {'checkpoint', 'dist', 'fsdp_resume'} <= set(report['fixed'])
    for name in ('checkpoint', 'dist', 'fsdp_resume'):
        assert FIX_ATTRIBUTES[name] & set(report['changed']), name
    assert not any('_global_optimizer' in k for k in report['changed'])


#: modules of the stack whose objects olor-mm must not set attributes on
STACK = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmseg')

#: parameters whose attributes olor-mm may set, and why: none is an object
#: of the stack's machinery
OWN = {
    'cfg': "a config: the data olor-mm's tools edit as MMDetection's do",
    'anchor': "olor-mm's own anchor",
}


class _Assignments(ast.NodeVisitor):
    """``X.attr = ...`` / ``setattr(X, ...)`` where ``X`` is a name bound
    by an import from the stack, or a parameter of the enclosing function
    (an object the caller passed in: not created here)."""

    def __init__(self):
        self.stack_names = set()
        self.params = [set()]
        self.found = []

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split('.')[0] in STACK:
                self.stack_names.add((alias.asname
                                      or alias.name).split('.')[0])

    def visit_ImportFrom(self, node):
        if (node.module or '').split('.')[0] in STACK:
            for alias in node.names:
                self.stack_names.add(alias.asname or alias.name)

    def _function(self, node):
        args = node.args
        names = {
            a.arg
            for a in args.posonlyargs + args.args + args.kwonlyargs
        } - {'self', 'cls'} - set(OWN)
        self.params.append(names)
        self.generic_visit(node)
        self.params.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def _root(self, node):
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    def _check(self, target, node):
        if isinstance(target, ast.Attribute):
            root = self._root(target.value)
            if root in self.stack_names or root in self.params[-1]:
                self.found.append((node.lineno, ast.unparse(target)))

    def visit_Assign(self, node):
        for target in node.targets:
            self._check(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._check(node.target, node)
        self.generic_visit(node)

    def visit_Call(self, node):
        if isinstance(node.func,
                      ast.Name) and node.func.id in ('setattr',
                                                     'delattr') and node.args:
            root = self._root(node.args[0])
            if root in self.stack_names or root in self.params[-1]:
                self.found.append((node.lineno, ast.unparse(node)))
        self.generic_visit(node)


def test_no_module_outside_compat_sets_attributes_of_the_stack():
    found = {}
    for path in glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True):
        rel = osp.relpath(path, PACKAGE)
        if rel.startswith('compat' + os.sep):
            continue
        visitor = _Assignments()
        visitor.visit(ast.parse(open(path).read()))
        if visitor.found:
            found[rel] = visitor.found
    assert not found, found


def test_the_source_check_sees_a_patch():
    """The check above catches the patterns olor-mm used to patch with."""
    visitor = _Assignments()
    visitor.visit(
        ast.parse('from mmengine.runner import Runner\n'
                  'def f(wrapper, x):\n'
                  '    wrapper.initialize_count_status = x\n'
                  '    setattr(wrapper, "step", x)\n'
                  'Runner.load_or_resume = f\n'))
    assert [line for line, _ in visitor.found] == [3, 4, 5]


@pytest.mark.parametrize('name', sorted(FIX_ATTRIBUTES))
def test_every_fix_is_listed_with_its_upstream_report(name):
    """docs/compatibility.md lists each fix with the report of the bug."""
    doc = open(osp.join(osp.dirname(TESTS), 'docs', 'compatibility.md')).read()
    section = doc[doc.index(f'**`{name}`**'):]
    section = section[:section.find('\n- **', 1)]
    assert 'github.com' in section, name
