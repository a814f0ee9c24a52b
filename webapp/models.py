"""Register every model on the shared metadata: `chains` models and each webapp feature's `models.py`."""
from __future__ import annotations

import importlib
import pkgutil

import chains.models  # noqa: F401
import webapp

for _mod in pkgutil.iter_modules(webapp.__path__):
    if _mod.ispkg:
        try:
            importlib.import_module(f"webapp.{_mod.name}.models")
        except ModuleNotFoundError as exc:
            if exc.name != f"webapp.{_mod.name}.models":
                raise
