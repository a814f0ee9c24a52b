"""Navigation entries by role; features add theirs to NAV_ITEMS."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request, url_for
from flask_login import current_user


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str
    roles: tuple[str, ...]  # empty: everyone logged in


NAV_ITEMS: list[NavItem] = []

# The menu's order, whatever order the features are imported in; an entry not listed here comes after these.
MENU_ORDER = (
    "chainmaps.index",
    "leads.board",
    "leads.register",
    "leads.projects_page",
    "leads.kpi_page",
    "clusters.index",
    "audit.index",
    "auth.users",
    "firms.index",
    "suppliers.index",
    "suppliers.requests",
    "imports.index",
    "api_tokens.index",
)


def _menu_position(item: NavItem) -> int:
    return MENU_ORDER.index(item.endpoint) if item.endpoint in MENU_ORDER else len(MENU_ORDER)


def register(endpoint: str, label: str, *roles: str) -> None:
    """Add a menu entry (once) for the users with one of `roles` (none: everyone logged in)."""
    if all(item.endpoint != endpoint for item in NAV_ITEMS):
        NAV_ITEMS.append(NavItem(endpoint, label, tuple(roles)))
        NAV_ITEMS.sort(key=_menu_position)  # stable: unlisted entries keep their registration order


def nav_items() -> list[dict]:
    """The current user's menu entries: url, label, whether the current page is under it."""
    if not current_user.is_authenticated:
        return []
    items = []
    for item in NAV_ITEMS:
        if item.roles and current_user.role not in item.roles:
            continue
        url = url_for(item.endpoint)
        items.append({"url": url, "label": item.label, "active": request.path.startswith(url) and url != "/"})
    return items
