"""Spreadsheet export helpers (.xlsx via openpyxl, CSV) with formula-injection escaping."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Iterable, Sequence

# Cells starting with these are run as formulas by Excel/LibreOffice/WPS (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SHEET_TITLE_MAX = 31
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_ENCODING = "utf-8-sig"  # the BOM makes Excel read UTF-8 Chinese text correctly


def safe_cell(value: Any) -> Any:
    """Value safe to put in a spreadsheet cell: text that a spreadsheet would run as a formula is
    prefixed with a single quote; numbers, dates, booleans and None pass through."""
    if value is None or isinstance(value, (bool, int, float, date, datetime)):
        return value
    if isinstance(value, (list, tuple, set)):
        value = "、".join(str(v) for v in value)
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def sheet_title(title: str, used: set[str] | None = None) -> str:
    """A valid, unique worksheet title (≤31 characters, no []:*?/\\)."""
    base = _BAD_SHEET_CHARS.sub("_", title).strip() or "Sheet"
    base = base[:SHEET_TITLE_MAX]
    used = used if used is not None else set()
    candidate, n = base, 2
    while candidate in used:
        suffix = f"({n})"
        candidate = base[: SHEET_TITLE_MAX - len(suffix)] + suffix
        n += 1
    used.add(candidate)
    return candidate


def write_xlsx(
    target: str | Path | IO[bytes], sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]
) -> None:
    """Write one worksheet per (title, headers, rows) to an .xlsx path or binary stream."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    if wb.active is not None:  # a new workbook's default sheet
        wb.remove(wb.active)
    used: set[str] = set()
    for title, headers, rows in sheets or [("Sheet", [], [])]:
        ws = wb.create_sheet(sheet_title(title, used))
        ws.append([safe_cell(h) for h in headers])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        widths = [max(4, len(str(h)) * 2) for h in headers]
        for row in rows:
            values = [safe_cell(v) for v in row]
            ws.append(values)
            for i, v in enumerate(values[: len(widths)]):
                widths[i] = min(60, max(widths[i], len(str(v)) + 2 if v is not None else 0))
        for i, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = "A2"
    wb.save(target)


def xlsx_bytes(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> bytes:
    buf = io.BytesIO()
    write_xlsx(buf, sheets)
    return buf.getvalue()


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text (no BOM) with escaped cells."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([safe_cell(h) for h in headers])
    for row in rows:
        writer.writerow(["" if (v := safe_cell(x)) is None else v for x in row])
    return buf.getvalue()


def write_csv(path: str | Path, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a UTF-8 (with BOM, for Excel) CSV file with escaped cells."""
    Path(path).write_text(csv_text(headers, rows), encoding=CSV_ENCODING, newline="")
