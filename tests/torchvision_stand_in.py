"""A STAND-IN for torchvision, for importing timm and mmpretrain in tests.

On this project's machine the registry's torchvision wheels are built
against CUDA torch and do not import beside the CPU torch ("operator
torchvision::nms does not exist"), so the test set-up does not install
torchvision. timm and mmpretrain import a few torchvision names at import
time (``FrozenBatchNorm2d`` in isinstance checks, transforms and box ops
for their data pipelines) that the code under test never calls. This module
puts empty modules under those names in ``sys.modules`` for the duration of
a test module: every attribute is a placeholder class that cannot be
called. The models, ``group_matcher`` and the backbones are timm's and
mmpretrain's own code.
"""
import importlib.machinery
import sys
import types

NAMES = ('torchvision', 'torchvision.ops', 'torchvision.ops.boxes',
         'torchvision.ops.misc', 'torchvision.transforms',
         'torchvision.transforms.functional',
         'torchvision.transforms.transforms', 'torchvision.datasets',
         'torchvision.utils', 'torchvision.models',
         'torchvision.models.feature_extraction')


class _Placeholder(type):
    """A class for any torchvision name; using it raises."""

    def __getattr__(cls, name):
        return _Placeholder(name, (), {})

    def __call__(cls, *args, **kwargs):
        raise RuntimeError(f'torchvision stand-in: {cls.__name__} is not '
                           'available in the tests')


class _StandInModule(types.ModuleType):

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        value = _Placeholder(name, (), {})
        setattr(self, name, value)
        return value


def torchvision_imports() -> bool:
    """Whether a real torchvision imports here."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # ImportError, or the CUDA build's RuntimeError
        for name in [n for n in sys.modules if n.startswith('torchvision')]:
            del sys.modules[name]
        return False
    return True


def install() -> list:
    """Put the stand-in modules in ``sys.modules``; returns their names."""
    for name in NAMES:
        module = _StandInModule(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        module.__path__ = []
        sys.modules[name] = module
        parent, _, child = name.rpartition('.')
        if parent:
            setattr(sys.modules[parent], child, module)
    sys.modules['torchvision'].__version__ = '0.0.0+stand-in'
    return list(NAMES)


def uninstall() -> None:
    """Take the stand-in out of ``sys.modules`` (what imported through it
    keeps its names)."""
    for name in [n for n in sys.modules if n.split('.')[0] == 'torchvision']:
        del sys.modules[name]
