"""Cluster YAML: parse with line numbers, validate against the database, import idempotently.

Roster firms are referenced by `Enterprise.external_id` (demo firms are loaded before clusters).
Import upserts the cluster, its chains, yearly indicators, roster entries, manual confirmed link
assignments and optional `projects:`; rows added elsewhere (e.g. by the UI) are left in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import Chain, ChainLink
from chains.chainmap_io import chain_files
from chains.chainmap_parse import SLUG_RE, ChainMapError
from chains.cluster_models import (
    ASSIGNMENT_MANUAL,
    ROSTER_ROLES,
    Cluster,
    ClusterChain,
    ClusterIndicator,
    LinkAssignment,
    RosterEntry,
)
from chains.enterprise_models import Enterprise
from chains.list_models import Project
from chains.yaml_marks import MarkedDict, line_of, load_marked, read_text

CLUSTER_KEYS = (
    "id",
    "name",
    "province",
    "city",
    "district",
    "leading_industry",
    "cluster_type",
    "area_mu",
    "area_km2",
    "chains",
    "chain_leader",
    "description",
    "data_note",
    "gap_thresholds",
    "indicators",
    "roster",
    "projects",
)
INDICATOR_NUMBERS = ("output_value", "revenue", "tax", "fixed_investment", "leading_revenue")
INDICATOR_KEYS = ("year",) + INDICATOR_NUMBERS + ("source",)
ROSTER_KEYS = ("firm", "role", "links", "note")
PROJECT_KEYS = ("name", "firm", "link", "investment", "status", "year", "note")
THRESHOLD_KEYS = ("weak_max", "strong_min")
DEMO_MARK = "演示"  # a data_note containing this marks the cluster as demo data


@dataclass
class ClusterImportResult:
    cluster_id: str
    created: bool
    chains: int = 0
    indicators: int = 0
    roster: int = 0
    assignments: int = 0
    projects: int = 0
    source_file: str = ""


@dataclass
class _Roster:
    enterprise_id: int
    role: str
    links: list[tuple[str, str]]  # (chain_id, link_key)
    note: str


@dataclass
class _ParsedCluster:
    fields: dict[str, Any]
    chain_ids: list[str]
    leader_id: int | None
    thresholds: dict[str, int]
    indicators: list[dict[str, Any]]
    roster: list[_Roster]
    projects: list[dict[str, Any]] = field(default_factory=list)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    raise ValueError


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _unknown(doc: MarkedDict, allowed: tuple[str, ...], where: str, add: Callable[[int | None, str], None]) -> None:
    for key in doc:
        if key not in allowed:
            add(doc.line_of(key), f"{where}未知字段：{key}（允许：{', '.join(allowed)}）")
    for key, line in getattr(doc, "duplicate_keys", []):
        add(line, f"{where}字段重复：{key}")


def parse_cluster_text(session: Session, text: str, filename: str = "<text>") -> _ParsedCluster:
    """Parse and validate a cluster document against chains and firms in the DB; raise ChainMapError."""
    errors: list[tuple[str, int | None, str]] = []

    def add(line: int | None, message: str) -> None:
        errors.append((filename, line, message))

    doc, problem = load_marked(text)
    if problem:
        raise ChainMapError([(filename, problem.line, problem.message)])
    if not isinstance(doc, MarkedDict):
        raise ChainMapError([(filename, 1, "文件顶层必须是映射（包含 id、name、chains 等字段）")])
    _unknown(doc, CLUSTER_KEYS, "集聚区", add)

    cluster_id = _text(doc.get("id"))
    if not cluster_id:
        add(doc.line, "缺少集聚区 id")
    elif not SLUG_RE.match(cluster_id):
        add(doc.line_of("id"), f"集聚区 id 必须是小写字母、数字和连字符组成的标识：{cluster_id}")
    if not _text(doc.get("name")):
        add(doc.line_of("name"), "集聚区名称不能为空")
    fields: dict[str, Any] = {"id": cluster_id}
    for key in ("name", "province", "city", "district", "leading_industry", "cluster_type", "description", "data_note"):
        fields[key] = _text(doc.get(key))
    for key in ("area_mu", "area_km2"):
        try:
            fields[key] = _num(doc.get(key))
            if fields[key] is not None and fields[key] <= 0:
                add(doc.line_of(key), f"{key} 必须大于 0")
        except ValueError:
            add(doc.line_of(key), f"{key} 必须是数字")
            fields[key] = None

    # chains
    chain_ids: list[str] = []
    raw_chains = doc.get("chains")
    links_by_key: dict[str, str] = {}  # link key -> chain id, over the cluster's chains' current versions
    if not isinstance(raw_chains, list) or not raw_chains:
        add(doc.line_of("chains"), "chains 必须是非空的产业链 id 列表")
    else:
        for index, cid in enumerate(raw_chains):
            cid = _text(cid)
            chain = session.get(Chain, cid) if cid else None
            if chain is None or chain.current_version_id is None:
                add(line_of(raw_chains, index), f"产业链不存在：{cid}（请先导入产业链图谱）")
                continue
            if cid in chain_ids:
                add(line_of(raw_chains, index), f"产业链重复：{cid}")
                continue
            chain_ids.append(cid)
            for key in session.scalars(select(ChainLink.key).where(ChainLink.version_id == chain.current_version_id)):
                links_by_key[key] = cid

    def firm_id(external_id: Any, line: int | None, what: str) -> int | None:
        ext = _text(external_id)
        if not ext:
            add(line, f"{what}缺少企业外部编号")
            return None
        found = session.scalar(select(Enterprise.id).where(Enterprise.external_id == ext))
        if found is None:
            add(line, f"{what}企业不存在：{ext}（按外部编号查找；请先导入企业数据）")
        return found

    leader_id = None
    if _text(doc.get("chain_leader")):
        leader_id = firm_id(doc.get("chain_leader"), doc.line_of("chain_leader"), "链主")

    thresholds: dict[str, int] = {}
    raw_thr = doc.get("gap_thresholds") or {}
    if not isinstance(raw_thr, dict):
        add(doc.line_of("gap_thresholds"), "gap_thresholds 必须是映射")
    else:
        if isinstance(raw_thr, MarkedDict):
            _unknown(raw_thr, THRESHOLD_KEYS, "gap_thresholds ", add)
        for key in THRESHOLD_KEYS:
            if key in raw_thr:
                value = raw_thr[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    add(line_of(raw_thr, key), f"gap_thresholds.{key} 必须是非负整数")
                else:
                    thresholds[key] = value
        if (
            "weak_max" in thresholds
            and "strong_min" in thresholds
            and thresholds["weak_max"] >= thresholds["strong_min"]
        ):
            add(doc.line_of("gap_thresholds"), "gap_thresholds 中 weak_max 必须小于 strong_min")

    indicators: list[dict[str, Any]] = []
    raw_ind = doc.get("indicators") or []
    if not isinstance(raw_ind, list):
        add(doc.line_of("indicators"), "indicators 必须是列表")
        raw_ind = []
    years: set[int] = set()
    for index, item in enumerate(raw_ind):
        ln = line_of(raw_ind, index)
        if not isinstance(item, MarkedDict):
            add(ln, "指标必须是映射 {year: …, revenue: …}")
            continue
        _unknown(item, INDICATOR_KEYS, "指标", add)
        year = item.get("year")
        if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2100:
            add(item.line_of("year"), f"指标年份无效：{year!r}")
            continue
        if year in years:
            add(item.line_of("year"), f"指标年份重复：{year}")
            continue
        years.add(year)
        row: dict[str, Any] = {"year": year, "source": _text(item.get("source"))}
        for key in INDICATOR_NUMBERS:
            try:
                row[key] = _num(item.get(key))
                if row[key] is not None and row[key] < 0:
                    add(item.line_of(key), f"指标 {key} 不能为负数")
            except ValueError:
                add(item.line_of(key), f"指标 {key} 必须是数字（单位：万元）")
        indicators.append(row)

    roster: list[_Roster] = []
    raw_roster = doc.get("roster") or []
    if not isinstance(raw_roster, list):
        add(doc.line_of("roster"), "roster 必须是列表")
        raw_roster = []
    seen_firms: set[int] = set()
    for index, item in enumerate(raw_roster):
        ln = line_of(raw_roster, index)
        if not isinstance(item, MarkedDict):
            add(ln, "名录条目必须是映射 {firm: …, role: …}")
            continue
        _unknown(item, ROSTER_KEYS, "名录条目", add)
        eid = firm_id(item.get("firm"), item.line_of("firm"), "名录")
        role = _text(item.get("role")) or "配套"
        if role not in ROSTER_ROLES:
            add(item.line_of("role"), f"名录角色无效：{role}（应为 龙头/骨干/配套）")
        links: list[tuple[str, str]] = []
        raw_links = item.get("links") or []
        if not isinstance(raw_links, list):
            add(item.line_of("links"), "links 必须是环节 id 列表")
            raw_links = []
        for li, key in enumerate(raw_links):
            key = _text(key)
            if key not in links_by_key:
                add(line_of(raw_links, li), f"环节 {key} 不属于该集聚区的产业链（{', '.join(chain_ids) or '无'}）")
            else:
                links.append((links_by_key[key], key))
        if eid is not None:
            if eid in seen_firms:
                add(item.line_of("firm"), f"名录中企业重复：{_text(item.get('firm'))}")
                continue
            seen_firms.add(eid)
            roster.append(_Roster(eid, role, links, _text(item.get("note"))))

    projects: list[dict[str, Any]] = []
    raw_projects = doc.get("projects") or []
    if not isinstance(raw_projects, list):
        add(doc.line_of("projects"), "projects 必须是列表")
        raw_projects = []
    project_names: set[str] = set()
    for index, item in enumerate(raw_projects):
        ln = line_of(raw_projects, index)
        if not isinstance(item, MarkedDict):
            add(ln, "重点项目必须是映射 {name: …}")
            continue
        _unknown(item, PROJECT_KEYS, "重点项目", add)
        name = _text(item.get("name"))
        if not name:
            add(item.line, "重点项目名称不能为空")
            continue
        if name in project_names:
            add(item.line_of("name"), f"重点项目重复：{name}")
            continue
        project_names.add(name)
        row = {
            "name": name,
            "status": _text(item.get("status")),
            "note": _text(item.get("note")),
            "enterprise_id": None,
            "chain_id": None,
            "link_key": None,
            "investment_wan": None,
            "year": None,
        }
        if _text(item.get("firm")):
            row["enterprise_id"] = firm_id(item.get("firm"), item.line_of("firm"), "重点项目")
        link = _text(item.get("link"))
        if link:
            if link not in links_by_key:
                add(item.line_of("link"), f"重点项目的环节 {link} 不属于该集聚区的产业链")
            else:
                row["chain_id"], row["link_key"] = links_by_key[link], link
        try:
            row["investment_wan"] = _num(item.get("investment"))
        except ValueError:
            add(item.line_of("investment"), "重点项目投资额必须是数字（单位：万元）")
        year = item.get("year")
        if year is not None:
            if isinstance(year, bool) or not isinstance(year, int):
                add(item.line_of("year"), f"重点项目年份无效：{year!r}")
            else:
                row["year"] = year
        projects.append(row)

    if errors:
        raise ChainMapError(errors)
    return _ParsedCluster(fields, chain_ids, leader_id, thresholds, indicators, roster, projects)


def import_cluster_file(session: Session, path: str | Path, commit: bool = True) -> ClusterImportResult:
    """Validate and upsert one cluster file in one transaction; raise ChainMapError on any problem."""
    path = Path(path)
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ChainMapError([(str(path), None, f"无法读取文件：{exc}")]) from exc
    try:
        parsed = parse_cluster_text(session, text, str(path))
        result = _write(session, parsed, str(path))
        if commit:
            session.commit()
        return result
    except Exception:
        session.rollback()
        raise


def _write(session: Session, parsed: _ParsedCluster, source_file: str) -> ClusterImportResult:
    f = parsed.fields
    cluster = session.get(Cluster, f["id"])
    created = cluster is None
    if cluster is None:
        cluster = Cluster(id=f["id"], name=f["name"])
        session.add(cluster)
    for key in (
        "name",
        "province",
        "city",
        "district",
        "leading_industry",
        "cluster_type",
        "description",
        "data_note",
        "area_mu",
        "area_km2",
    ):
        setattr(cluster, key, f[key])
    cluster.chain_leader_id = parsed.leader_id
    cluster.gap_thresholds = dict(parsed.thresholds)
    cluster.source_file = source_file[-512:]
    cluster.is_demo = DEMO_MARK in f["data_note"]
    session.flush()

    # The file defines the cluster's chains (in order).
    existing = {cc.chain_id: cc for cc in cluster.chains}
    cluster.chains = [
        existing.get(cid) or ClusterChain(cluster_id=cluster.id, chain_id=cid) for cid in parsed.chain_ids
    ]
    for position, cc in enumerate(cluster.chains):
        cc.position = position

    by_year = {
        i.year: i for i in session.scalars(select(ClusterIndicator).where(ClusterIndicator.cluster_id == cluster.id))
    }
    for row in parsed.indicators:
        ind = by_year.get(row["year"]) or ClusterIndicator(cluster_id=cluster.id, year=row["year"])
        for key, value in row.items():
            setattr(ind, key, value)
        session.add(ind)

    roster_rows = {
        r.enterprise_id: r for r in session.scalars(select(RosterEntry).where(RosterEntry.cluster_id == cluster.id))
    }
    assignments = 0
    for item in parsed.roster:
        entry = roster_rows.get(item.enterprise_id) or RosterEntry(
            cluster_id=cluster.id, enterprise_id=item.enterprise_id
        )
        entry.role, entry.note = item.role, item.note
        session.add(entry)
        for chain_id, key in item.links:
            assignment = session.scalar(
                select(LinkAssignment).where(
                    LinkAssignment.cluster_id == cluster.id,
                    LinkAssignment.enterprise_id == item.enterprise_id,
                    LinkAssignment.link_key == key,
                )
            )
            if assignment is None:
                assignment = LinkAssignment(cluster_id=cluster.id, enterprise_id=item.enterprise_id, link_key=key)
                session.add(assignment)
            assignment.chain_id, assignment.source, assignment.confirmed = chain_id, ASSIGNMENT_MANUAL, True
            assignments += 1

    projects = {p.name: p for p in session.scalars(select(Project).where(Project.cluster_id == cluster.id))}
    for row in parsed.projects:
        project = projects.get(row["name"]) or Project(cluster_id=cluster.id, name=row["name"])
        for key, value in row.items():
            setattr(project, key, value)
        session.add(project)
    session.flush()
    return ClusterImportResult(
        cluster.id,
        created,
        len(parsed.chain_ids),
        len(parsed.indicators),
        len(parsed.roster),
        assignments,
        len(parsed.projects),
        source_file,
    )


def import_cluster_path(
    session: Session, path: str | Path
) -> tuple[list[ClusterImportResult], list[tuple[str, int | None, str]]]:
    """Import a cluster file or every YAML file of a folder, each in its own transaction."""
    if not Path(path).exists():
        return [], [(str(path), None, "路径不存在")]
    results, errors = [], []
    for file in chain_files(path):
        try:
            results.append(import_cluster_file(session, file))
        except ChainMapError as exc:
            errors.extend(exc.errors)
    return results, errors


def cluster_summaries(session: Session) -> list[dict[str, Any]]:
    """id, name, chain ids and roster size of every cluster."""
    out = []
    for cluster in session.scalars(select(Cluster).order_by(Cluster.id)):
        firms = len(session.scalars(select(RosterEntry.id).where(RosterEntry.cluster_id == cluster.id)).all())
        out.append(
            {
                "id": cluster.id,
                "name": cluster.name,
                "chains": cluster.chain_ids,
                "firms": firms,
                "province": cluster.province,
                "city": cluster.city,
                "cluster_type": cluster.cluster_type,
            }
        )
    return out
