"""Moved to `webapp.web.integrations`; kept for `placement_views` until the background-jobs rewrite lands (issue 18)."""
from webapp.web.integrations import audit, optional_function, optional_module  # noqa: F401
