"""Model registry: importing this module registers every table on `Base.metadata`.

Each feature keeps its models in its own module; add the import here when a module is added.
"""

from __future__ import annotations

import importlib
import pkgutil

from chains.db import Base

# Model modules follow the naming rule `*_models.py` inside `chains/` and `webapp/<feature>/models.py`.
for _mod in pkgutil.iter_modules(__import__("chains").__path__):
    if _mod.name.endswith("_models"):
        importlib.import_module(f"chains.{_mod.name}")

__all__ = ["Base"]
