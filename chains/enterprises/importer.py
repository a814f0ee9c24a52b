"""Import an enterprise table into the registry: one transaction per file, idempotent, with a row report.

The fields written are in chains/enterprises/import_fields.py, the row report in chains/enterprises/import_report.py,
PostgreSQL's COPY path in chains/enterprises/pg_copy.py.

Identity of a row: its 统一社会信用代码; else its 外部编号; else its normalised name + city. Rows of the same
identity within a file are merged (later non-empty cells win). Empty cells never erase stored values.
Writes use bulk statements (lists of dicts) with identity maps pre-loaded per chunk, not one ORM object per row.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from chains.db import utcnow
from chains.enterprise_models import Enterprise, EnterpriseChange, EnterpriseTag
from chains.enterprises.import_fields import DATA_FIELDS, INSERT_DEFAULTS
from chains.enterprises.import_report import (
    OUTCOME_INSERTED,
    OUTCOME_MERGED,
    OUTCOME_REJECTED,
    OUTCOME_UNCHANGED,
    OUTCOME_UPDATED,
    ImportResult,
    ReportRow,
    write_report,
)
from chains.enterprises.pg_copy import allocate_ids, copy_connection, copy_rows
from chains.enterprises.readers import Table, read_table
from chains.enterprises.rows import ParsedRow, identity_label, parse_row

# An enterprises row (or a row of its tag / change tables) as column name → value.
_Row = dict[str, Any]
# (name_norm, city) → {id: row} of the stored firms of that name and city
_ByName = dict[tuple[str, str], dict[int, _Row]]

logger = logging.getLogger("chainmatch.enterprises.import")

CHUNK_SIZE = 1000  # rows per pre-load/insert batch: keeps IN lists under every database's parameter limit
FLOAT_TOLERANCE = 1e-9
# Rows per multi-VALUES INSERT … RETURNING statement: psycopg re-parses uncached long statements, which made
# 1000-row pages about twice as slow on PostgreSQL as 100-row pages (SQLite is indifferent).
INSERT_PAGE_SIZE = 100
# After COPYing this many new rows, refresh the planner statistics (ANALYZE, inside the transaction): a table
# filled faster than autovacuum notices keeps "empty table" estimates, and the next import's prepared id look-ups
# then scan the whole table (measured: a 100k re-import right after a COPY import took minutes instead of 55 s).
ANALYZE_AFTER_COPIED_ROWS = 10_000

# The models' tables as `Table` (`Model.__table__` is typed as the wider FromClause).
_ENT = Enterprise.metadata.tables[Enterprise.__tablename__]
_TAGS = EnterpriseTag.metadata.tables[EnterpriseTag.__tablename__]
_CHANGES = EnterpriseChange.metadata.tables[EnterpriseChange.__tablename__]
_LOAD_COLUMNS = [_ENT.c.id] + [_ENT.c[name] for name in DATA_FIELDS]

ProgressCallback = Callable[[int, int], None]


@dataclass
class _Pending:
    line: int
    parsed: ParsedRow
    merged_lines: list[int] = field(default_factory=list)


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, (int, float)) and not isinstance(new, bool):
        return math.isclose(old, float(new), rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
    if isinstance(old, datetime) and isinstance(new, date):
        return old.date() == new
    return bool(old == new)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return "；".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _identity_of(credit_code: str | None, external_id: str | None, name_norm: str, city: str) -> tuple[str, str]:
    """Same rule as ParsedRow.identity, applied to stored columns."""
    if credit_code:
        return "credit_code", credit_code
    if external_id:
        return "external_id", external_id
    return "name", f"{name_norm}|{city}"


def _merge(earlier: ParsedRow, later: ParsedRow) -> ParsedRow:
    merged = ParsedRow(
        values={**earlier.values, **later.values},
        tags=later.tags if later.tags is not None else earlier.tags,
        warnings=earlier.warnings + later.warnings,
    )
    return merged


class _Importer:
    def __init__(
        self, session: Session, source_file: str, job_id: int | None, progress: ProgressCallback | None, chunk_size: int
    ):
        self.session = session
        self.source_file = source_file[:255]
        self.job_id = job_id
        self.progress = progress
        self.chunk_size = max(1, chunk_size)
        self.result = ImportResult()
        self.now = utcnow()
        self.copied = 0  # rows written with COPY (PostgreSQL)

    # ------------------------------------------------------------ parse and merge
    def collect(self, table: Table) -> list[_Pending]:
        result = self.result
        by_identity: dict[tuple[str, str], _Pending] = {}
        order: list[tuple[str, str]] = []
        merged_reports: list[ReportRow] = []
        for line, raw in table.rows:
            result.total_rows += 1
            parsed = parse_row(raw, table.units)
            if parsed.errors:
                result.rejected += 1
                result.report.append(
                    ReportRow(
                        line,
                        parsed.values.get("name", "") or str(raw.get("name") or "")[:100],
                        self._raw_identity(raw),
                        OUTCOME_REJECTED,
                        "；".join(parsed.errors),
                    )
                )
                continue
            identity = parsed.identity
            previous = by_identity.get(identity)
            if previous is None:
                by_identity[identity] = _Pending(line, parsed)
                order.append(identity)
                continue
            result.duplicates_merged += 1
            merged_reports.append(
                ReportRow(
                    previous.line,
                    previous.parsed.values.get("name", ""),
                    identity_label(identity),
                    OUTCOME_MERGED,
                    f"与第{line}行为同一企业，已合并（后出现的行优先）",
                )
            )
            by_identity[identity] = _Pending(
                line, _merge(previous.parsed, parsed), previous.merged_lines + [previous.line]
            )
        result.report.extend(merged_reports)
        return [by_identity[i] for i in order]

    @staticmethod
    def _raw_identity(raw: dict[str, Any]) -> str:
        code = str(raw.get("credit_code") or "").strip()
        if code:
            return f"信用代码:{code[:40]}"
        ext = str(raw.get("external_id") or "").strip()
        return f"外部编号:{ext[:64]}" if ext else ""

    # ------------------------------------------------------------ write
    def _preload(self, chunk: list[_Pending]) -> tuple[dict[str, _Row], dict[str, _Row], _ByName]:
        codes = {p.parsed.values["credit_code"] for p in chunk if p.parsed.values.get("credit_code")}
        exts = {p.parsed.values["external_id"] for p in chunk if p.parsed.values.get("external_id")}
        names = {p.parsed.values["name_norm"] for p in chunk if p.parsed.identity[0] == "name"}
        by_code: dict[str, _Row] = {}
        by_ext: dict[str, _Row] = {}
        by_name: _ByName = {}
        for column, keys in ((_ENT.c.credit_code, codes), (_ENT.c.external_id, exts), (_ENT.c.name_norm, names)):
            if not keys:
                continue
            for mapping in self.session.execute(select(*_LOAD_COLUMNS).where(column.in_(keys))).mappings():
                row = dict(mapping)
                if row["credit_code"]:
                    by_code[row["credit_code"]] = row
                if row["external_id"]:
                    by_ext[row["external_id"]] = row
                by_name.setdefault((row["name_norm"], row["city"]), {})[row["id"]] = row
        return by_code, by_ext, by_name

    def _match(
        self, pending: _Pending, by_code: dict[str, _Row], by_ext: dict[str, _Row], by_name: _ByName
    ) -> tuple[_Row | None, str]:
        """The stored row this record updates (None: new), or a rejection reason."""
        values = pending.parsed.values
        kind, key = pending.parsed.identity
        if kind == "credit_code":
            existing = by_code.get(key)
        elif kind == "external_id":
            existing = by_ext.get(key)
        else:
            candidates = by_name.get((values.get("name_norm", ""), values.get("city", "")), {})
            if len(candidates) > 1:
                return None, "名称与城市匹配到多家已有企业，请补充统一社会信用代码或外部编号"
            existing = next(iter(candidates.values()), None)
        ext = values.get("external_id")
        if ext:
            owner = by_ext.get(ext)
            if owner is not None and (existing is None or owner["id"] != existing["id"]):
                return None, f"外部编号“{ext}”已属于另一家企业（{owner['name']}）"
        return existing, ""

    def write(self, records: list[_Pending]) -> None:
        pg = copy_connection(self.session)
        if pg is not None:
            # The per-chunk id look-ups run as prepared statements; a generic plan made without statistics (a table
            # just filled, or filled in this very transaction) scans the whole table for every chunk.
            with pg.cursor() as cur:
                cur.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        total = len(records)
        claimed_ext: dict[str, int] = {}
        done = 0
        for start in range(0, total, self.chunk_size):
            chunk = records[start : start + self.chunk_size]
            self._write_chunk(chunk, claimed_ext)
            done += len(chunk)
            if self.progress:
                self.progress(done, total)
        if self.copied >= ANALYZE_AFTER_COPIED_ROWS:
            conn = copy_connection(self.session)
            assert conn is not None  # rows were copied: PostgreSQL
            with conn.cursor() as cur:
                cur.execute(f'ANALYZE "{_ENT.name}"')
                cur.execute(f'ANALYZE "{_TAGS.name}"')

    def _write_chunk(self, chunk: list[_Pending], claimed_ext: dict[str, int]) -> None:
        by_code, by_ext, by_name = self._preload(chunk)
        inserts: list[_Row] = []
        insert_pending: list[_Pending] = []
        updates: list[tuple[_Pending, _Row, _Row]] = []
        result = self.result
        for pending in chunk:
            values = pending.parsed.values
            existing, problem = self._match(pending, by_code, by_ext, by_name)
            ext = values.get("external_id")
            if not problem and ext and ext in claimed_ext and claimed_ext[ext] != pending.line:
                problem = f"外部编号“{ext}”与第{claimed_ext[ext]}行的另一家企业重复"
            if problem:
                result.rejected += 1
                result.report.append(
                    ReportRow(
                        pending.line,
                        values.get("name", ""),
                        identity_label(pending.parsed.identity),
                        OUTCOME_REJECTED,
                        problem,
                    )
                )
                continue
            if ext:
                claimed_ext[ext] = pending.line
            if existing is None:
                row = {
                    **INSERT_DEFAULTS,
                    **values,
                    "source_file": self.source_file,
                    "created_at": self.now,
                    "updated_at": self.now,
                }
                inserts.append(row)
                insert_pending.append(pending)
            else:
                updates.append((pending, existing, values))

        if inserts:
            copy_conn = copy_connection(self.session)
            if copy_conn is not None:
                # PostgreSQL: ids drawn from the table's sequence up front, then COPY (same transaction).
                ids = allocate_ids(copy_conn, _ENT, len(inserts))
                copy_rows(copy_conn, _ENT, [{**row, "id": i} for row, i in zip(inserts, ids)])
                self.copied += len(inserts)
                new_ids = {p.parsed.identity: i for p, i in zip(insert_pending, ids)}
            else:
                # RETURNING the identity columns (not relying on row order, which SQLite batches do not guarantee).
                returned = self.session.execute(
                    insert(_ENT)
                    .returning(_ENT.c.id, _ENT.c.credit_code, _ENT.c.external_id, _ENT.c.name_norm, _ENT.c.city)
                    .execution_options(insertmanyvalues_page_size=INSERT_PAGE_SIZE),
                    inserts,
                ).all()
                new_ids = {_identity_of(r.credit_code, r.external_id, r.name_norm, r.city): r.id for r in returned}
            # New firms get no change rows: created_at and source_file already record where they came from.
            tag_rows = []
            for pending in insert_pending:
                new_id = new_ids[pending.parsed.identity]
                for tag in pending.parsed.tags or ():
                    tag_rows.append({"enterprise_id": new_id, "tag": tag})
                self._report(pending, OUTCOME_INSERTED)
            if tag_rows and copy_conn is not None:
                copy_rows(copy_conn, _TAGS, tag_rows)
            elif tag_rows:
                self.session.execute(insert(_TAGS), tag_rows)
            result.inserted += len(inserts)
        if updates:
            self._apply_updates(updates)

    def _change(self, enterprise_id: int, field_name: str, old: Any, new: Any) -> _Row:
        return {
            "enterprise_id": enterprise_id,
            "field": field_name,
            "old_value": _as_text(old),
            "new_value": _as_text(new),
            "source_file": self.source_file,
            "import_job_id": self.job_id,
            "changed_at": self.now,
        }

    def _apply_updates(self, updates: list[tuple[_Pending, _Row, _Row]]) -> None:
        ids = [existing["id"] for _, existing, _ in updates]
        old_tags: dict[int, set[str]] = {i: set() for i in ids}
        for enterprise_id, tag in self.session.execute(
            select(EnterpriseTag.enterprise_id, EnterpriseTag.tag).where(EnterpriseTag.enterprise_id.in_(ids))
        ):
            old_tags[enterprise_id].add(tag)
        changes: list[_Row] = []
        by_keys: dict[frozenset[str], list[_Row]] = {}
        retag_ids: list[int] = []
        new_tag_rows: list[_Row] = []
        for pending, existing, values in updates:
            eid = existing["id"]
            diff = {k: v for k, v in values.items() if not _same(existing[k], v)}
            for key, new in diff.items():
                changes.append(self._change(eid, key, existing[key], new))
            tags = pending.parsed.tags
            tags_changed = tags is not None and set(tags) != old_tags[eid]
            if tags is not None and tags_changed:
                changes.append(self._change(eid, "tags", "；".join(sorted(old_tags[eid])), "；".join(sorted(tags))))
                retag_ids.append(eid)
                new_tag_rows.extend({"enterprise_id": eid, "tag": t} for t in tags)
            if diff or tags_changed:
                row = {"id": eid, **diff, "source_file": self.source_file, "updated_at": self.now}
                by_keys.setdefault(frozenset(row), []).append(row)
                self.result.updated += 1
                self._report(
                    pending, OUTCOME_UPDATED, "变更字段：" + "、".join(list(diff) + (["tags"] if tags_changed else []))
                )
            else:
                self.result.unchanged += 1
                self._report(pending, OUTCOME_UNCHANGED)
        for rows in by_keys.values():
            self.session.execute(update(Enterprise), rows)
        if retag_ids:
            self.session.execute(delete(_TAGS).where(EnterpriseTag.enterprise_id.in_(retag_ids)))
            self.session.execute(insert(_TAGS), new_tag_rows)
        if changes:
            self.session.execute(insert(_CHANGES), changes)

    def _report(self, pending: _Pending, outcome: str, reason: str = "") -> None:
        notes = [reason] if reason else []
        if pending.merged_lines:
            notes.append("合并了第" + "、".join(str(n) for n in pending.merged_lines) + "行")
        notes.extend(pending.parsed.warnings)
        self.result.report.append(
            ReportRow(
                pending.line,
                pending.parsed.values.get("name", ""),
                identity_label(pending.parsed.identity),
                outcome,
                "；".join(notes),
            )
        )


def import_table(
    session: Session,
    table: Table,
    *,
    source_file: str = "",
    job_id: int | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ImportResult:
    """Import an already opened table inside the session's current transaction (no commit)."""
    importer = _Importer(session, source_file, job_id, progress, chunk_size)
    importer.result.encoding = table.encoding
    importer.result.unmapped_columns = list(table.unmapped)
    records = importer.collect(table)
    importer.write(records)
    importer.result.report.sort(key=lambda r: r.line)
    return importer.result


def import_file(
    session: Session,
    path: str | os.PathLike[str],
    *,
    mapping: dict[str, str] | str | None = None,
    report_path: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    source_name: str | None = None,
    job_id: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    commit: bool = True,
) -> ImportResult:
    """Import one CSV/XLSX file as ONE transaction: all of it is committed, or (on any error) nothing.

    Raises TableReadError (Chinese message) when the file cannot be read. With commit=False the caller commits
    (e.g. to record the job's outcome in the same transaction) and must roll back on error.
    """
    table = read_table(path, mapping)
    source = source_name or Path(path).name
    try:
        result = import_table(
            session, table, source_file=source, job_id=job_id, progress=progress, chunk_size=chunk_size
        )
        if report_path is not None:
            write_report(result.report, report_path)
        if commit:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    logger.info("imported %s: %s", source, result.counts())
    return result
