"""The row report of an enterprise import: each row's outcome, the import's counts, the report as a CSV file."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

OUTCOME_INSERTED = "inserted"
OUTCOME_UPDATED = "updated"
OUTCOME_UNCHANGED = "unchanged"
OUTCOME_REJECTED = "rejected"
OUTCOME_MERGED = "merged"
OUTCOME_LABELS = {
    OUTCOME_INSERTED: "新增",
    OUTCOME_UPDATED: "更新",
    OUTCOME_UNCHANGED: "无变化",
    OUTCOME_REJECTED: "拒绝",
    OUTCOME_MERGED: "合并",
}
REPORT_HEADER = ["行号", "企业名称", "标识", "结果", "结果说明", "原因"]


@dataclass
class ReportRow:
    line: int
    name: str
    identity: str
    outcome: str
    reason: str = ""


@dataclass
class ImportResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates_merged: int = 0
    total_rows: int = 0
    encoding: str = ""
    unmapped_columns: list[str] = field(default_factory=list)
    report: list[ReportRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The CLI/web JSON contract."""
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "duplicates_merged": self.duplicates_merged,
        }


def write_report(rows: Iterable[ReportRow], path: str | os.PathLike[str]) -> None:
    """Row report as UTF-8 CSV with BOM (opens correctly in Excel); formula-like cells are escaped."""
    from chains.excel import safe_cell

    tmp = Path(str(path) + ".part")
    with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(REPORT_HEADER)
        for r in rows:
            writer.writerow(
                [
                    r.line,
                    safe_cell(r.name),
                    safe_cell(r.identity),
                    r.outcome,
                    OUTCOME_LABELS.get(r.outcome, r.outcome),
                    safe_cell(r.reason),
                ]
            )
    os.replace(tmp, path)
