"""Editing a chain map: a draft of the current version, changed link by link, saved as a new version.

A save goes through the same path as a YAML import (the draft is written as YAML, parsed with the file
validation and imported), so an edited map obeys exactly the rules of a file; each save records who and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import STAGES, Chain, ChainVersion
from chains.chainmap_io import ChainImportResult, import_parsed_chain
from chains.chainmap_parse import LIST_FIELDS, SLUG_RE, ChainMapError, parse_chain_text

LINK_TEXT_FIELDS = ("name", "description", "key_tech_note")
KIND_EDIT, KIND_UPLOAD, KIND_RESTORE = "edit", "upload", "restore"
KIND_LABELS = {"import": "文件导入", KIND_EDIT: "在线编辑", KIND_UPLOAD: "上传 YAML", KIND_RESTORE: "恢复旧版本"}
SPLIT_RE = re.compile(r"[,，、;；\n\r]+")


class EditError(ValueError):
    """An edit that cannot apply (unknown link, a move under its own sub-link…); the message is Chinese."""


def split_terms(text: str) -> list[str]:
    """Keywords typed in one box: split on commas (either width), 、, semicolons and new lines."""
    return list(dict.fromkeys(t.strip() for t in SPLIT_RE.split(text or "") if t.strip()))


@dataclass
class ChainDraft:
    """A chain's fields, links (flat, each with `parent`) and supply edges, ready to be edited and saved."""

    chain_id: str
    fields: dict[str, str]
    links: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, version: ChainVersion) -> "ChainDraft":
        """The draft of one stored version."""
        links = [
            {
                "id": link.key,
                "parent": link.parent_key,
                "name": link.name,
                "stage": link.stage,
                "description": link.description or "",
                "keywords": list(link.keywords or []),
                "synonyms": list(link.synonyms or []),
                "products": list(link.products or []),
                "industry_codes": list(link.industry_codes or []),
                "key_tech": bool(link.key_tech),
                "key_tech_note": link.key_tech_note or "",
            }
            for link in sorted(version.links, key=lambda link: link.position)
        ]
        edges = [
            {"from": e.from_key, "to": e.to_key, "note": e.note or ""}
            for e in sorted(version.edges, key=lambda e: (e.from_key, e.to_key))
        ]
        fields = {
            "name": version.name or version.chain.name,
            "sector": version.sector,
            "version": version.declared_version,
            "description": version.description,
            "source": version.source,
        }
        return cls(version.chain_id, fields, links, edges)

    # ------------------------------------------------------------------ lookups

    def link(self, key: str) -> dict[str, Any]:
        for link in self.links:
            if link["id"] == key:
                return link
        raise EditError(f"环节 {key} 不存在。")

    def subtree(self, key: str) -> set[str]:
        """`key` and every link below it."""
        found, frontier = {key}, [key]
        while frontier:
            parent = frontier.pop()
            for link in self.links:
                if link["parent"] == parent and link["id"] not in found:
                    found.add(link["id"])
                    frontier.append(link["id"])
        return found

    def new_key(self, name_hint: str) -> str:
        """A free link id `<chain>-<hint>` (or `<chain>-link-N` when the hint is not a slug)."""
        hint = (name_hint or "").strip().lower()
        base = f"{self.chain_id}-{hint}" if hint and SLUG_RE.match(hint) else f"{self.chain_id}-link"
        taken = {link["id"] for link in self.links}
        if base not in taken and base != f"{self.chain_id}-link":
            return base
        n = 1
        while f"{base}-{n}" in taken:
            n += 1
        return f"{base}-{n}"

    # ------------------------------------------------------------------ edits

    def add_link(
        self, name: str = "", parent: str | None = None, stage: str = "", key: str = "", **values: Any
    ) -> dict[str, Any]:
        """Add a link at the top level (with a stage) or under `parent` (its stage by default)."""
        name = (name or "").strip()
        if not name:
            raise EditError("环节名称不能为空。")
        if parent:
            stage = stage or self.link(parent)["stage"]
        if stage not in STAGES:
            raise EditError("顶层环节需要选择上游、中游或下游。")
        hint = (key or "").strip().lower()
        hint = hint[len(self.chain_id) + 1 :] if hint.startswith(self.chain_id + "-") else hint
        key = f"{self.chain_id}-{hint}"
        if not hint or not SLUG_RE.match(hint) or key in {link["id"] for link in self.links}:
            key = self.new_key(hint)
        link: dict[str, Any] = {
            "id": key,
            "parent": parent or None,
            "name": name,
            "stage": stage,
            "description": "",
            "keywords": [],
            "synonyms": [],
            "products": [],
            "industry_codes": [],
            "key_tech": False,
            "key_tech_note": "",
        }
        link.update(_clean(values))
        self.links.append(link)
        return link

    def update_link(self, key: str, **values: Any) -> dict[str, Any]:
        """Change a link's name, stage, description, keyword lists or 卡脖子 flag."""
        link = self.link(key)
        values = _clean(values)
        if "name" in values and not values["name"]:
            raise EditError("环节名称不能为空。")
        if "stage" in values and values["stage"] not in STAGES:
            raise EditError("环节阶段应为上游、中游或下游。")
        link.update(values)
        return link

    def move_link(self, key: str, parent: str | None, stage: str = "") -> dict[str, Any]:
        """Put a link (with its sub-links) under another parent, or at the top level of `stage`."""
        link = self.link(key)
        if parent:
            if parent in self.subtree(key):
                raise EditError("不能把环节移动到它自己或它的子环节之下。")
            stage = self.link(parent)["stage"]
        elif stage and stage not in STAGES:
            raise EditError("环节阶段应为上游、中游或下游。")
        moved = self.subtree(key)
        link["parent"] = parent or None
        if stage:
            for other in self.links:
                if other["id"] in moved:
                    other["stage"] = stage
        # The moved subtree goes last among its new siblings.
        self.links = [link for link in self.links if link["id"] not in moved] + [
            link for link in self.links if link["id"] in moved
        ]
        return link

    def delete_link(self, key: str) -> list[str]:
        """Remove a link, its sub-links and their supply edges; return the removed keys."""
        self.link(key)
        gone = self.subtree(key)
        self.links = [link for link in self.links if link["id"] not in gone]
        self.edges = [e for e in self.edges if e["from"] not in gone and e["to"] not in gone]
        return sorted(gone)

    def update_fields(self, **values: str) -> None:
        """Change the chain's name, sector, description or source."""
        for name in ("name", "sector", "description", "source"):
            if name in values:
                self.fields[name] = (values[name] or "").strip()
        if not self.fields["name"]:
            raise EditError("产业链名称不能为空。")

    def add_edge(self, source: str, target: str, note: str = "") -> None:
        """`source` supplies `target`."""
        self.link(source), self.link(target)
        if source == target:
            raise EditError("供应关系的两端不能是同一个环节。")
        if any(e["from"] == source and e["to"] == target for e in self.edges):
            raise EditError("该供应关系已存在。")
        self.edges.append({"from": source, "to": target, "note": (note or "").strip()[:255]})

    def remove_edge(self, source: str, target: str) -> None:
        before = len(self.edges)
        self.edges = [e for e in self.edges if not (e["from"] == source and e["to"] == target)]
        if len(self.edges) == before:
            raise EditError("该供应关系不存在。")

    # ------------------------------------------------------------------ output

    def document(self) -> dict[str, Any]:
        """The chain as a YAML document (children nested under their parents, in draft order)."""
        children: dict[str | None, list[dict[str, Any]]] = {}
        for link in self.links:
            children.setdefault(link["parent"], []).append(link)

        def node(link: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {"id": link["id"], "name": link["name"], "stage": link["stage"]}
            for name in ("description", *LIST_FIELDS, "key_tech", "key_tech_note"):
                if link.get(name):
                    out[name] = link[name]
            kids = [node(k) for k in children.get(link["id"], [])]
            if kids:
                out["children"] = kids
            return out

        doc: dict[str, Any] = {
            "id": self.chain_id,
            **self.fields,
            "links": [node(link) for link in children.get(None, [])],
        }
        if self.edges:
            doc["supply"] = [
                {"from": e["from"], "to": e["to"], **({"note": e["note"]} if e["note"] else {})} for e in self.edges
            ]
        return doc

    def yaml(self) -> str:
        return yaml.safe_dump(self.document(), allow_unicode=True, sort_keys=False, width=100)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Form values to link fields: text stripped, lists split, the 卡脖子 flag as a bool; unknown names dropped."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in LINK_TEXT_FIELDS:
            out[name] = (value or "").strip()
        elif name in LIST_FIELDS:
            out[name] = (
                split_terms(value) if isinstance(value, str) else [str(v).strip() for v in value if str(v).strip()]
            )
        elif name == "key_tech":
            out[name] = bool(value)
        elif name == "stage":
            out[name] = (value or "").strip()
    return out


def current_draft(session: Session, chain_id: str) -> ChainDraft:
    """The draft of a chain's current version (KeyError when the chain has none)."""
    chain = session.get(Chain, chain_id)
    if chain is None or chain.current_version is None:
        raise KeyError(chain_id)
    return ChainDraft.of(chain.current_version)


def save_text(
    session: Session,
    chain_id: str,
    text: str,
    filename: str,
    kind: str,
    author_id: int | None,
    author: str,
    reason: str,
) -> ChainImportResult:
    """Validate and import YAML text for `chain_id` as a new version by `author` (not committed)."""
    parsed = parse_chain_text(text, filename)
    if parsed.id != chain_id:
        raise ChainMapError([(filename, 1, f"文件中的产业链 id（{parsed.id}）与当前产业链（{chain_id}）不一致")])
    provenance = {"kind": kind, "author_id": author_id, "author": author[:64], "reason": (reason or "").strip()}
    return import_parsed_chain(session, parsed, commit=False, provenance=provenance)


def save_draft(
    session: Session, draft: ChainDraft, author_id: int | None, author: str, reason: str, kind: str = KIND_EDIT
) -> ChainImportResult:
    """Save an edited draft as a new version (validated as a file would be; not committed)."""
    return save_text(session, draft.chain_id, draft.yaml(), "<编辑>", kind, author_id, author, reason)


def version_of(session: Session, chain_id: str, number: int) -> ChainVersion | None:
    """Version `number` of a chain."""
    return session.scalar(select(ChainVersion).where(ChainVersion.chain_id == chain_id, ChainVersion.version == number))
