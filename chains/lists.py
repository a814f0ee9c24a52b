"""N张清单: lists of a cluster × chain, materialised as ListEntry rows, curated with a change history.

Derived lists are rebuilt by `refresh_lists`; an entry is identified by (list, item_key) so its
curation (pin, removal, note) is kept across refreshes. Entries that stop deriving are kept but
hidden (`derived=False`), so their history and curation come back if they derive again; pinned ones
stay visible. 招商目标企业清单 entries are added by other features through `add_target`.
Each list's columns and its exports (.xlsx/.csv) are in chains/list_export.py.

Derivation rules:
- leaders 龙头骨干企业清单: roster firms with role 龙头/骨干 that are placed on this chain, or not placed
  on any chain of the cluster yet.
- suppliers 主要配套企业清单: roster firms with role 配套 that have confirmed assignments on this chain.
- weak_links 补短板突破环节清单: leaf links with status 空白 or 薄弱.
- strong_links 锻长板重点领域清单: links (any level) with status 优势.
- targets 招商目标企业清单: added by hand / by other features only.
- projects 重点项目清单: the cluster's projects on this chain, or with no link given.
- key_tech 卡脖子技术清单: key_tech links of the chain, with whether the cluster covers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chainmap_io import current_links
from chains.cluster_models import Cluster, LinkAssignment, RosterEntry
from chains.db import utcnow
from chains.enterprise_models import Enterprise
from chains.gaps import STATUS_BLANK, STATUS_STRONG, STATUS_WEAK, analyze_chain
from chains.list_models import ENTRY_DERIVED, ENTRY_MANUAL, ListChange, ListEntry, Project

LIST_LEADERS = "leaders"
LIST_SUPPLIERS = "suppliers"
LIST_WEAK_LINKS = "weak_links"
LIST_STRONG_LINKS = "strong_links"
LIST_TARGETS = "targets"
LIST_PROJECTS = "projects"
LIST_KEY_TECH = "key_tech"

LIST_TYPES: dict[str, str] = {
    LIST_LEADERS: "龙头骨干企业清单",
    LIST_SUPPLIERS: "主要配套企业清单",
    LIST_WEAK_LINKS: "补短板突破环节清单",
    LIST_STRONG_LINKS: "锻长板重点领域清单",
    LIST_TARGETS: "招商目标企业清单",
    LIST_PROJECTS: "重点项目清单",
    LIST_KEY_TECH: "卡脖子技术清单",
}
DERIVED_LISTS = tuple(t for t in LIST_TYPES if t != LIST_TARGETS)

LEADER_ROLES = ("龙头", "骨干")
SUPPLIER_ROLE = "配套"


@dataclass
class _Item:
    item_key: str
    data: dict[str, Any]
    enterprise_id: int | None = None
    link_key: str | None = None
    project_id: int | None = None


def _firm_data(ent: Enterprise) -> dict[str, Any]:
    return {
        "name": ent.name,
        "industry": ent.industry_name or ent.industry_class or ent.industry_division or "",
        "region": "".join(x for x in (ent.province, ent.city, ent.district) if x),
        "revenue_wan": ent.revenue_wan,
        "tags": "、".join(ent.tag_names),
    }


def _derive(session: Session, cluster_id: str, chain_id: str) -> dict[str, list[_Item]]:
    gap = analyze_chain(session, cluster_id, chain_id)
    link_by_key = {link.link_id: link for link in gap.links}
    roster = session.scalars(select(RosterEntry).where(RosterEntry.cluster_id == cluster_id)).all()
    assignments = session.scalars(
        select(LinkAssignment).where(LinkAssignment.cluster_id == cluster_id, LinkAssignment.confirmed.is_(True))
    ).all()
    on_chain: dict[int, list[str]] = {}
    placed_anywhere: set[int] = set()
    for a in assignments:
        placed_anywhere.add(a.enterprise_id)
        if a.chain_id == chain_id and a.link_key in link_by_key:
            on_chain.setdefault(a.enterprise_id, []).append(a.link_key)
    order = {link.link_id: i for i, link in enumerate(gap.links)}

    out: dict[str, list[_Item]] = {t: [] for t in DERIVED_LISTS}
    role_rank = {"龙头": 0, "骨干": 1, "配套": 2}
    for entry in sorted(
        roster, key=lambda r: (role_rank.get(r.role, 3), -(r.enterprise.revenue_wan or 0), r.enterprise.name)
    ):
        ent = entry.enterprise
        keys = sorted(on_chain.get(ent.id, []), key=lambda k: order[k])
        names = "、".join(link_by_key[k].name for k in keys)
        if entry.role in LEADER_ROLES and (keys or ent.id not in placed_anywhere):
            out[LIST_LEADERS].append(
                _Item(f"ent:{ent.id}", {**_firm_data(ent), "role": entry.role, "links": names}, enterprise_id=ent.id)
            )
        elif entry.role == SUPPLIER_ROLE and keys:
            stages = "、".join(dict.fromkeys(link_by_key[k].stage for k in keys))
            out[LIST_SUPPLIERS].append(
                _Item(f"ent:{ent.id}", {**_firm_data(ent), "links": names, "stages": stages}, enterprise_id=ent.id)
            )

    for link in gap.links:
        parent = link_by_key[link.parent_id].name if link.parent_id in link_by_key else ""
        if link.is_leaf and link.status in (STATUS_BLANK, STATUS_WEAK):
            out[LIST_WEAK_LINKS].append(
                _Item(
                    f"link:{link.link_id}",
                    {
                        "name": link.name,
                        "stage": link.stage,
                        "parent": parent,
                        "status": link.status,
                        "firms": link.firm_count,
                        "key_tech": "是" if link.key_tech else "否",
                        "keywords": "",
                    },
                    link_key=link.link_id,
                )
            )
        if link.status == STATUS_STRONG:
            out[LIST_STRONG_LINKS].append(
                _Item(
                    f"link:{link.link_id}",
                    {
                        "name": link.name,
                        "stage": link.stage,
                        "status": link.status,
                        "firms": link.firm_count,
                        "revenue_wan": link.revenue_wan,
                        "top_firms": "、".join(f.name for f in link.firms[:5]),
                    },
                    link_key=link.link_id,
                )
            )
        if link.key_tech:
            out[LIST_KEY_TECH].append(
                _Item(
                    f"link:{link.link_id}",
                    {
                        "name": link.name,
                        "stage": link.stage,
                        "key_tech_note": "",
                        "covered": "是" if link.firm_count else "否",
                        "firms": link.firm_count,
                        "status": link.status,
                    },
                    link_key=link.link_id,
                )
            )
    # Fields kept off LinkGap (keywords, notes) come from the link rows themselves.
    link_rows = {link.key: link for link in current_links(session, chain_id)}
    for item in out[LIST_WEAK_LINKS]:
        assert item.link_key is not None  # the link lists' items carry their link
        item.data["keywords"] = "、".join(link_rows[item.link_key].keywords or [])
    for item in out[LIST_KEY_TECH]:
        assert item.link_key is not None
        item.data["key_tech_note"] = link_rows[item.link_key].key_tech_note

    projects = session.scalars(select(Project).where(Project.cluster_id == cluster_id)).all()
    # Sorted here: NULL years order differently on SQLite and PostgreSQL.
    for p in sorted(projects, key=lambda p: (p.year is None, p.year or 0, p.id)):
        if p.chain_id not in (None, chain_id):
            continue
        out[LIST_PROJECTS].append(
            _Item(
                f"proj:{p.id}",
                {
                    "name": p.name,
                    "enterprise": p.enterprise.name if p.enterprise else "",
                    "link": link_by_key[p.link_key].name if p.link_key in link_by_key else "",
                    "investment_wan": p.investment_wan,
                    "status": p.status,
                    "year": p.year,
                },
                enterprise_id=p.enterprise_id,
                link_key=p.link_key,
                project_id=p.id,
            )
        )
    return out


def refresh_lists(session: Session, cluster_id: str, chain_id: str, commit: bool = True) -> dict[str, int]:
    """Re-derive every derived list of a cluster × chain, keeping curation; returns visible counts."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise KeyError(f"cluster {cluster_id}")
    if chain_id not in cluster.chain_ids:
        raise KeyError(f"chain {chain_id} is not a chain of cluster {cluster_id}")
    derived = _derive(session, cluster_id, chain_id)
    now = utcnow()
    existing = {
        (e.list_type, e.item_key): e
        for e in session.scalars(
            select(ListEntry).where(ListEntry.cluster_id == cluster_id, ListEntry.chain_id == chain_id)
        )
    }
    for list_type, items in derived.items():
        keys = set()
        for position, item in enumerate(items):
            keys.add(item.item_key)
            entry = existing.get((list_type, item.item_key))
            if entry is None:
                entry = ListEntry(
                    cluster_id=cluster_id,
                    chain_id=chain_id,
                    list_type=list_type,
                    item_key=item.item_key,
                    source=ENTRY_DERIVED,
                )
                session.add(entry)
            entry.derived, entry.position, entry.data = True, position, item.data
            entry.enterprise_id, entry.link_key, entry.project_id = item.enterprise_id, item.link_key, item.project_id
            entry.refreshed_at = now
        for (lt, key), entry in existing.items():
            if lt == list_type and key not in keys and entry.source == ENTRY_DERIVED:
                entry.derived = False
    session.flush()
    if commit:
        session.commit()
    return {t: len(get_list(session, cluster_id, chain_id, t)) for t in LIST_TYPES}


def get_list(
    session: Session, cluster_id: str, chain_id: str, list_type: str, include_removed: bool = False
) -> list[ListEntry]:
    """Visible entries of one list (pinned first, then derivation order); removed ones on request."""
    if list_type not in LIST_TYPES:
        raise KeyError(f"list {list_type}")
    entries = session.scalars(
        select(ListEntry).where(
            ListEntry.cluster_id == cluster_id, ListEntry.chain_id == chain_id, ListEntry.list_type == list_type
        )
    ).all()
    shown = [
        e
        for e in entries
        if e.visible or (include_removed and e.removed and (e.derived or e.pinned or e.source == ENTRY_MANUAL))
    ]
    return sorted(shown, key=lambda e: (not e.pinned, e.removed, e.position, e.id))


def _actor(user: Any) -> tuple[int | None, str | None]:
    if user is None:
        return None, None
    if isinstance(user, str):
        return None, user
    return getattr(user, "id", None), getattr(user, "username", None)


def _record(session: Session, entry: ListEntry, action: str, old: Any, new: Any, user: Any) -> ListChange:
    user_id, username = _actor(user)
    change = ListChange(
        entry=entry,
        action=action,
        old_value=None if old is None else str(old),
        new_value=None if new is None else str(new),
        user_id=user_id,
        username=username,
    )
    session.add(change)
    return change


def _entry(session: Session, entry_id: int) -> ListEntry:
    entry = session.get(ListEntry, entry_id)
    if entry is None:
        raise KeyError(f"list entry {entry_id}")
    return entry


def _set_flag(
    session: Session, entry_id: int, attr: str, value: bool, action: str, user: Any, commit: bool
) -> ListEntry:
    entry = _entry(session, entry_id)
    if getattr(entry, attr) != value:
        _record(session, entry, action, getattr(entry, attr), value, user)
        setattr(entry, attr, value)
    session.flush()
    if commit:
        session.commit()
    return entry


def pin(session: Session, entry_id: int, user: Any = None, commit: bool = True) -> ListEntry:
    """Pin an entry to the top of its list (recorded in ListChange)."""
    return _set_flag(session, entry_id, "pinned", True, "pin", user, commit)


def unpin(session: Session, entry_id: int, user: Any = None, commit: bool = True) -> ListEntry:
    return _set_flag(session, entry_id, "pinned", False, "unpin", user, commit)


def remove(session: Session, entry_id: int, user: Any = None, commit: bool = True) -> ListEntry:
    """Hide an entry from its list; refreshes keep it hidden."""
    return _set_flag(session, entry_id, "removed", True, "remove", user, commit)


def restore(session: Session, entry_id: int, user: Any = None, commit: bool = True) -> ListEntry:
    return _set_flag(session, entry_id, "removed", False, "restore", user, commit)


def set_note(session: Session, entry_id: int, note: str, user: Any = None, commit: bool = True) -> ListEntry:
    entry = _entry(session, entry_id)
    note = (note or "").strip()
    if entry.note != note:
        _record(session, entry, "note", entry.note, note, user)
        entry.note = note
    session.flush()
    if commit:
        session.commit()
    return entry


def add_target(
    session: Session,
    cluster_id: str,
    chain_id: str,
    enterprise_id: int,
    user: Any = None,
    note: str = "",
    link_key: str | None = None,
    commit: bool = True,
) -> ListEntry:
    """Add a firm to the 招商目标企业清单 of a cluster × chain (idempotent; a removed entry is restored)."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is None or chain_id not in cluster.chain_ids:
        raise KeyError(f"chain {chain_id} of cluster {cluster_id}")
    ent = session.get(Enterprise, enterprise_id)
    if ent is None:
        raise KeyError(f"enterprise {enterprise_id}")
    entry = session.scalar(
        select(ListEntry).where(
            ListEntry.cluster_id == cluster_id,
            ListEntry.chain_id == chain_id,
            ListEntry.list_type == LIST_TARGETS,
            ListEntry.item_key == f"ent:{enterprise_id}",
        )
    )
    user_id, username = _actor(user)
    link_name = ""
    if link_key:
        link_name = next((link.name for link in current_links(session, chain_id) if link.key == link_key), link_key)
    if entry is None:
        count = len(
            session.scalars(
                select(ListEntry.id).where(
                    ListEntry.cluster_id == cluster_id,
                    ListEntry.chain_id == chain_id,
                    ListEntry.list_type == LIST_TARGETS,
                )
            ).all()
        )
        entry = ListEntry(
            cluster_id=cluster_id,
            chain_id=chain_id,
            list_type=LIST_TARGETS,
            item_key=f"ent:{enterprise_id}",
            source=ENTRY_MANUAL,
            derived=False,
            position=count,
            enterprise_id=enterprise_id,
            link_key=link_key,
            created_by_id=user_id,
            data={
                **_firm_data(ent),
                "link": link_name,
                "added_by": username or "",
                "added_at": utcnow().strftime("%Y-%m-%d %H:%M"),
            },
            note=(note or "").strip(),
        )
        session.add(entry)
        _record(session, entry, "add", None, ent.name, user)
    else:
        if entry.removed:
            _record(session, entry, "restore", True, False, user)
            entry.removed = False
        if link_key and link_key != entry.link_key:
            entry.link_key = link_key
            entry.data = {**entry.data, "link": link_name}
        if note and note.strip() != entry.note:
            _record(session, entry, "note", entry.note, note.strip(), user)
            entry.note = note.strip()
    session.flush()
    if commit:
        session.commit()
    return entry
