"""Optional services of other packages (gap analysis, lists, evaluation, matcher), imported when present.

The UI degrades to a notice when a service is missing, instead of failing the page.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any, Callable

logger = logging.getLogger("chainmatch.ui")


def optional_module(name: str) -> ModuleType | None:
    """The module `name`, or None when it does not exist (yet)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise


def optional_function(module: str, function: str) -> Callable[..., Any] | None:
    """`module.function`, or None when the module or the function does not exist (yet)."""
    mod = optional_module(module)
    return getattr(mod, function, None) if mod is not None else None


def audit(
    action: str, object_type: str = "", object_id: Any = None, cluster_id: str | None = None, **detail: Any
) -> None:
    """Write an audit-log entry (webapp.audit) in the current session when the audit feature is present."""
    record = optional_function("webapp.services.audit", "record")
    if record is not None:
        record(action, object_type, "" if object_id is None else object_id, cluster_id=cluster_id, **detail)
