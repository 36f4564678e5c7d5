"""olor-mm: OLOR rollback fine-tuning as MMEngine plug-ins."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name):
    """Requirement lines of requirements/<name>.txt, comments stripped."""
    with open(osp.join(HERE, 'requirements', name)) as f:
        lines = (re.sub(r'#.*', '', line).strip() for line in f)
        return [line for line in lines if line]


def read_version():
    with open(osp.join(HERE, 'olor_mm', '__init__.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


setup(
    name='olor_mm',
    version=read_version(),
    description='OLOR (One step Learning, One step Review) weight rollback '
    'for MMEngine, MMDetection and MMSegmentation fine-tuning',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['olor_mm', 'olor_mm.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require=dict(tests=read_requirements('tests.txt'),
                        bench=read_requirements('bench.txt')),
    license='Apache-2.0',
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
