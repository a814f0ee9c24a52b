"""Read enterprise tables from CSV (UTF-8, UTF-8 BOM, GBK/GB18030) and XLSX files.

The header row is found among the first rows (title and blank rows above it are skipped); Chinese header
synonyms map to canonical field keys, optionally overridden by a user mapping (dict or JSON file).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

HEADER_SCAN_ROWS = 30  # title rows above the header are rarely more than a handful
MIN_HEADER_MATCHES = 2  # a header row names at least this many known columns
FORMULA_PREFIXES = ("=", "+", "-", "@")

# Canonical field key → accepted header spellings (compared after normalise_header).
FIELD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("企业名称", "公司名称", "名称", "企业名", "单位名称", "机构名称", "enterprise", "company", "name"),
    "credit_code": ("统一社会信用代码", "信用代码", "社会信用代码", "统一信用代码", "uscc", "credit_code"),
    "external_id": ("外部编号", "企业id", "企业编号", "编号", "外部id", "external_id", "id"),
    "status": ("登记状态", "经营状态", "企业状态", "状态", "status"),
    "founded_on": ("成立日期", "成立时间", "注册日期", "设立日期", "founded", "founded_on"),
    "capital": ("注册资本", "注册资金", "capital"),
    "province": ("省份", "所属省份", "省", "所在省份", "province"),
    "city": ("城市", "所属城市", "市", "所在城市", "地市", "city"),
    "district": ("区县", "所属区县", "区", "县区", "所在区县", "district"),
    "address": ("注册地址", "地址", "企业地址", "住所", "通信地址", "address"),
    "legal_representative": ("法定代表人", "法人代表", "法人", "legal_representative"),
    "phone": ("电话", "联系电话", "企业电话", "phone"),
    "email": ("邮箱", "电子邮箱", "企业邮箱", "email"),
    "website": ("网址", "官网", "企业官网", "网站", "website"),
    "industry_code": ("国标行业代码", "行业代码", "国民经济行业代码", "industry_code"),
    "industry_name": ("所属行业", "国标行业", "行业", "国民经济行业", "行业名称", "industry"),
    "business_scope": ("经营范围", "business_scope"),
    "main_products": ("主营产品", "主要产品", "产品", "主营业务", "main_products"),
    "tags": ("企业标签", "标签", "企业资质", "tags"),
    "employees": ("参保人数", "员工人数", "从业人数", "人员规模", "employees"),
    "revenue": ("营业收入", "营收", "年营业收入", "revenue"),
    "former_names": ("曾用名", "历史名称", "former_names"),
    "country": ("国家", "国别", "国家地区", "country"),
    "data_note": ("数据说明", "备注", "数据来源", "data_note"),
}
FIELD_LABELS = {key: spellings[0] for key, spellings in FIELD_SYNONYMS.items()}
_OPENING = "（("
_CLOSING = "）)"


class TableReadError(Exception):
    """The file cannot be read as an enterprise table; the message is in Chinese for users."""


def split_unit_suffix(text: str) -> tuple[str, str | None]:
    """`注册资本（万元）` → (`注册资本`, `万元`): a trailing bracket, found in linear time (a regex was quadratic)."""
    if not text or text[-1] not in _CLOSING:
        return text, None
    body = text[:-1]
    last_closing = max(body.rfind(c) for c in _CLOSING)
    for index in range(last_closing + 1, len(body)):
        if body[index] in _OPENING:
            return text[:index], body[index + 1 :]
    return text, None


def normalise_header(value: Any) -> str:
    """A header cell without spaces, colons, asterisks and a trailing unit, lower-cased."""
    text = unicodedata.normalize("NFKC", "" if value is None else str(value))
    text = re.sub(r"[\s*:：]", "", text).lower()
    return split_unit_suffix(text)[0]


_LOOKUP = {normalise_header(s): key for key, spellings in FIELD_SYNONYMS.items() for s in spellings}


def load_mapping(mapping: dict[str, str] | str | os.PathLike[str] | None) -> dict[str, str]:
    """User header mapping {file header: field key or standard Chinese header}; a str/path is a JSON file."""
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        try:
            mapping = json.loads(Path(mapping).read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise TableReadError(f"无法读取列映射文件：{exc}") from exc
        if not isinstance(mapping, dict):
            raise TableReadError('列映射文件应为 JSON 对象，如 {"公司": "企业名称"}')
    resolved = {}
    for header, target in mapping.items():
        key = target if target in FIELD_SYNONYMS else _LOOKUP.get(normalise_header(target))
        if key is None:
            raise TableReadError(f"列映射中的目标字段“{target}”无法识别")
        resolved[normalise_header(header)] = key
    return resolved


@dataclass
class Table:
    """Rows of one sheet, as {field key: raw cell value}, each with its 1-based row number in the file."""

    columns: dict[int, str]  # column index → field key
    header_row: int
    unmapped: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)  # field key → unit in the header, e.g. capital: 元
    rows: Iterator[tuple[int, dict[str, Any]]] = iter(())
    encoding: str = ""


def _map_header(cells: list[Any], mapping: dict[str, str]) -> tuple[dict[int, str], list[str], dict[str, str]]:
    columns: dict[int, str] = {}
    unmapped, units = [], {}
    for index, cell in enumerate(cells):
        norm = normalise_header(cell)
        if not norm:
            continue
        key = mapping.get(norm) or _LOOKUP.get(norm)
        if key and key not in columns.values():
            columns[index] = key
            unit = split_unit_suffix(unicodedata.normalize("NFKC", str(cell)).strip())[1]
            if unit is not None:
                units[key] = unit
        else:
            unmapped.append(str(cell))
    return columns, unmapped, units


def _find_header(rows: Iterator[tuple[int, list[Any]]], mapping: dict[str, str]) -> Table:
    for row_number, cells in rows:
        if row_number > HEADER_SCAN_ROWS:
            break
        columns, unmapped, units = _map_header(cells, mapping)
        if len(columns) >= MIN_HEADER_MATCHES and ("name" in columns.values() or "credit_code" in columns.values()):
            return Table(columns=columns, header_row=row_number, unmapped=unmapped, units=units)
    raise TableReadError(
        f"前{HEADER_SCAN_ROWS}行中未找到表头：需要包含“企业名称”或“统一社会信用代码”等列（可用列映射指定）"
    )


def _strip_escape(value: Any) -> Any:
    """Undo the apostrophe our exporter puts before cells starting with a formula character."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1] in FORMULA_PREFIXES:
        return value[1:]
    return value


def _records(table: Table, rows: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    columns = list(table.columns.items())
    for row_number, cells in rows:
        if not any(cells) or not any(c is not None and str(c).strip() for c in cells):
            continue  # blank line
        width = len(cells)
        record = {}
        for i, key in columns:
            if i < width:
                value = cells[i]
                if value.__class__ is str and value[:1] == "'":
                    value = _strip_escape(value)
                record[key] = value
        yield row_number, record


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Text and the encoding used: UTF-8 (with or without BOM), else GB18030 (superset of GBK), else detected."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data[:1_000_000]).best()
    if best is None:
        raise TableReadError("无法识别文件编码：请另存为 UTF-8 或 GBK 编码的 CSV")
    return data.decode(best.encoding, errors="replace"), best.encoding


def _csv_rows(text: str) -> Iterator[tuple[int, list[Any]]]:
    sample = text[:20_000]
    delimiter = ","
    first_lines = [line for line in sample.splitlines()[:HEADER_SCAN_ROWS] if line.strip()]
    if first_lines and sum(line.count("\t") for line in first_lines) > sum(line.count(",") for line in first_lines):
        delimiter = "\t"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for number, cells in enumerate(reader, start=1):
            yield number, cells
    except csv.Error as exc:
        raise TableReadError(f"CSV 格式错误（第{reader.line_num}行）：{exc}") from exc


def read_csv(path: str | os.PathLike[str], mapping: dict[str, str] | str | None = None) -> Table:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TableReadError(f"无法读取文件：{exc.strerror or exc}") from exc
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TableReadError("文件不是文本格式的 CSV（含二进制内容），请检查文件类型")
    text, encoding = decode_bytes(data)
    resolved = load_mapping(mapping)
    rows = _csv_rows(text)
    table = _find_header(rows, resolved)
    table.rows = _records(table, rows)
    table.encoding = encoding
    return table


def _xlsx_rows(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types (zipfile, KeyError, InvalidFileException)
        raise TableReadError(f"无法打开 Excel 文件（仅支持 .xlsx）：{type(exc).__name__}") from exc
    try:
        sheet = workbook.active or workbook.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(cells)
    finally:
        workbook.close()


def read_xlsx(path: str | os.PathLike[str], mapping: dict[str, str] | str | None = None) -> Table:
    resolved = load_mapping(mapping)
    rows = _xlsx_rows(path)
    table = _find_header(rows, resolved)
    table.rows = _records(table, rows)
    table.encoding = "xlsx"
    return table


SUPPORTED_EXTENSIONS = (".csv", ".txt", ".xlsx", ".xlsm")


def read_table(path: str | os.PathLike[str], mapping: dict[str, str] | str | None = None) -> Table:
    """Open a CSV or XLSX enterprise table (by extension); TableReadError with a Chinese message otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, mapping)
    if suffix in (".csv", ".txt", ""):
        return read_csv(path, mapping)
    if suffix == ".xls":
        raise TableReadError("不支持旧版 .xls 格式，请在 Excel 中另存为 .xlsx 或 CSV")
    raise TableReadError(f"不支持的文件类型“{suffix}”：请上传 CSV 或 XLSX 文件")
