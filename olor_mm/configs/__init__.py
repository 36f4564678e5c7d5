"""OLOR's config blocks as Python modules, for configs that upstream tools
parse: ``from olor_mm.configs.olor import *`` in a config (see
:mod:`olor_mm.configs.olor`)."""
