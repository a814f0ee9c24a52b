"""Differences between two chain map versions: links added, removed, renamed, moved, fields changed, edges."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chains.chain_models import ChainVersion

LINK_FIELDS = (
    "stage",
    "description",
    "keywords",
    "synonyms",
    "products",
    "industry_codes",
    "key_tech",
    "key_tech_note",
)
FIELD_LABELS = {
    "name": "名称",
    "stage": "环节阶段",
    "description": "说明",
    "keywords": "关键词",
    "synonyms": "同义词",
    "products": "产品",
    "industry_codes": "行业代码",
    "key_tech": "卡脖子",
    "key_tech_note": "技术说明",
    "sector": "所属领域",
    "source": "来源",
    "version": "版本标记",
}


def _value(link: Any, name: str) -> Any:
    value = link.get(name) if isinstance(link, dict) else getattr(link, name)
    return list(value or []) if isinstance(value, (list, tuple)) else value


def _key(link: Any) -> str:
    key: str = link["key"] if isinstance(link, dict) else link.key
    return key


def _parent(link: Any) -> str | None:
    return link.get("parent_key") if isinstance(link, dict) else link.parent_key


def link_changes(old_links: Iterable[Any], new_links: Iterable[Any]) -> dict[str, list[str]]:
    """Keys removed, moved (other parent), added and renamed between two link lists (rows, views or dicts)."""
    old = {_key(link): link for link in old_links}
    new = {_key(link): link for link in new_links}
    return {
        "removed": sorted(k for k in old if k not in new),
        "moved": sorted(k for k in old if k in new and _parent(old[k]) != _parent(new[k])),
        "added": sorted(k for k in new if k not in old),
        "renamed": sorted(k for k in old if k in new and _value(old[k], "name") != _value(new[k], "name")),
    }


@dataclass
class FieldChange:
    key: str
    name: str
    field: str
    old: Any
    new: Any

    @property
    def label(self) -> str:
        return FIELD_LABELS.get(self.field, self.field)


@dataclass
class VersionDiff:
    """What changed from version `old` to version `new` (names of links for display)."""

    old: ChainVersion
    new: ChainVersion
    added: list[tuple[str, str]] = field(default_factory=list)  # (key, name)
    removed: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[tuple[str, str, str]] = field(default_factory=list)  # (key, old name, new name)
    moved: list[tuple[str, str, str, str]] = field(default_factory=list)  # (key, name, old parent, new parent)
    fields: list[FieldChange] = field(default_factory=list)
    edges_added: list[tuple[str, str]] = field(default_factory=list)
    edges_removed: list[tuple[str, str]] = field(default_factory=list)
    chain_fields: list[FieldChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.added,
                self.removed,
                self.renamed,
                self.moved,
                self.fields,
                self.edges_added,
                self.edges_removed,
                self.chain_fields,
            )
        )


def diff_versions(old: ChainVersion, new: ChainVersion) -> VersionDiff:
    """The changes from `old` to `new` of the same chain."""
    before = {link.key: link for link in old.links}
    after = {link.key: link for link in new.links}
    names = {**{k: link.name for k, link in before.items()}, **{k: link.name for k, link in after.items()}}

    def parent_name(key: str | None) -> str:
        return names.get(key, key) if key else "（顶层）"

    diff = VersionDiff(old=old, new=new)
    for link in new.links:
        if link.key not in before:
            diff.added.append((link.key, link.name))
    for link in old.links:
        if link.key not in after:
            diff.removed.append((link.key, link.name))
            continue
        now = after[link.key]
        if now.name != link.name:
            diff.renamed.append((link.key, link.name, now.name))
        if now.parent_key != link.parent_key:
            diff.moved.append((link.key, now.name, parent_name(link.parent_key), parent_name(now.parent_key)))
        for name in LINK_FIELDS:
            if _value(link, name) != _value(now, name):
                diff.fields.append(FieldChange(link.key, now.name, name, _value(link, name), _value(now, name)))
    old_edges = {(e.from_key, e.to_key) for e in old.edges}
    new_edges = {(e.from_key, e.to_key) for e in new.edges}
    diff.edges_added = [(names.get(a, a), names.get(b, b)) for a, b in sorted(new_edges - old_edges)]
    diff.edges_removed = [(names.get(a, a), names.get(b, b)) for a, b in sorted(old_edges - new_edges)]
    for name, attr in (
        ("name", "name"),
        ("sector", "sector"),
        ("description", "description"),
        ("source", "source"),
        ("version", "declared_version"),
    ):
        if getattr(old, attr) != getattr(new, attr):
            diff.chain_fields.append(FieldChange("", "", name, getattr(old, attr), getattr(new, attr)))
    return diff
