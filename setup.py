"""olor-mm: the metadata lives in pyproject.toml.

This shim keeps ``python setup.py develop`` working for those who still use
it; ``pip install -e .`` (the Makefile's) reads pyproject.toml directly.
"""
from setuptools import setup

setup()
