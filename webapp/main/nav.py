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


def register(endpoint: str, label: str, *roles: str) -> None:
    if all(item.endpoint != endpoint for item in NAV_ITEMS):
        NAV_ITEMS.append(NavItem(endpoint, label, tuple(roles)))


def nav_items() -> list[dict]:
    if not current_user.is_authenticated:
        return []
    items = []
    for item in NAV_ITEMS:
        if item.roles and current_user.role not in item.roles:
            continue
        url = url_for(item.endpoint)
        items.append({"url": url, "label": item.label, "active": request.path.startswith(url) and url != "/"})
    return items
