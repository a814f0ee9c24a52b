"""Chain map YAML (1张图谱) parsing: read a chain file with line numbers and validate it completely.

A file with any error is rejected whole: `ChainMapError` lists every problem with its file and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chains.chain_models import STAGES
from chains.enterprises.normalize import SECTION_DIVISIONS
from chains.yaml_marks import MarkedDict, line_of, load_marked, read_text

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
INDUSTRY_CODE_RE = re.compile(r"^([A-T])(\d{2}|\d{3}|\d{4})?$")

CHAIN_KEYS = ("id", "name", "sector", "version", "description", "source", "links", "supply")
LINK_KEYS = (
    "id",
    "name",
    "stage",
    "description",
    "keywords",
    "synonyms",
    "products",
    "industry_codes",
    "key_tech",
    "key_tech_note",
    "children",
)
EDGE_KEYS = ("from", "to", "note")
LIST_FIELDS = ("keywords", "synonyms", "products", "industry_codes")
MAX_DEPTH = 6  # deeper trees are almost certainly an indentation mistake


class ChainMapError(Exception):
    """Validation failure of one or more chain/cluster files; `errors` lists (file, line, message)."""

    def __init__(self, errors: list[tuple[str, int | None, str]]):
        self.errors = list(errors)
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(f"{f}:{line if line else '-'}: {msg}" for f, line, msg in self.errors)


def industry_code_problem(code: Any) -> str | None:
    """Why `code` is not a valid GB/T 4754-2017 code (section letter + 2/3/4 digits), or None."""
    if not isinstance(code, str):
        return f"行业代码必须是字符串：{code!r}"
    match = INDUSTRY_CODE_RE.match(code)
    if not match:
        return f"行业代码格式错误：{code}（应为门类字母 A–T 加 2/3/4 位数字，如 C3841）"
    letter, digits = match.group(1), match.group(2)
    if digits:
        low, high = SECTION_DIVISIONS[letter]
        division = int(digits[:2])
        if not low <= division <= high:
            return f"行业代码 {code} 的大类 {digits[:2]} 不属于门类 {letter}（应为 {low:02d}–{high:02d}）"
    return None


@dataclass
class ParsedLink:
    key: str
    name: str
    stage: str
    parent_key: str | None
    depth: int
    position: int
    line: int
    description: str = ""
    keywords: list[str] = field(default_factory=list)
    synonyms: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    industry_codes: list[str] = field(default_factory=list)
    key_tech: bool = False
    key_tech_note: str = ""


@dataclass
class ParsedChain:
    id: str
    name: str
    sector: str
    declared_version: str
    description: str
    source: str
    links: list[ParsedLink]
    edges: list[tuple[str, str, str]]  # (from, to, note)
    source_file: str = ""

    def normalised(self) -> dict[str, Any]:
        """Canonical content: every field filled, stages resolved, edges sorted."""
        return {
            "id": self.id,
            "name": self.name,
            "sector": self.sector,
            "version": self.declared_version,
            "description": self.description,
            "source": self.source,
            "links": [
                {
                    "id": link.key,
                    "parent": link.parent_key,
                    "name": link.name,
                    "stage": link.stage,
                    "description": link.description,
                    "keywords": link.keywords,
                    "synonyms": link.synonyms,
                    "products": link.products,
                    "industry_codes": link.industry_codes,
                    "key_tech": link.key_tech,
                    "key_tech_note": link.key_tech_note,
                }
                for link in self.links
            ],
            "supply": sorted([list(e) for e in self.edges]),
        }

    def checksum(self) -> str:
        blob = json.dumps(self.normalised(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class _Collector:
    def __init__(self, filename: str):
        self.filename = filename
        self.errors: list[tuple[str, int | None, str]] = []

    def add(self, line: int | None, message: str) -> None:
        self.errors.append((self.filename, line, message))


def _text(value: Any, default: str = "") -> str:
    if value is None:
        return default
    return str(value).strip()


def _check_unknown(doc: MarkedDict, allowed: tuple[str, ...], where: str, errors: _Collector) -> None:
    for key in doc:
        if key not in allowed:
            errors.add(doc.line_of(key), f"{where}未知字段：{key}（允许：{', '.join(allowed)}）")
    for key, line in getattr(doc, "duplicate_keys", []):
        errors.add(line, f"{where}字段重复：{key}")


def _string_list(doc: MarkedDict, key: str, errors: _Collector, where: str) -> list[str]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        errors.add(doc.line_of(key), f"{where}{key} 必须是字符串列表")
        return []
    return [str(v).strip() for v in value if str(v).strip()]


def parse_chain_text(text: str, filename: str = "<text>") -> ParsedChain:
    """Parse and validate one chain file's text (no database checks); raise ChainMapError."""
    errors = _Collector(filename)
    doc, problem = load_marked(text)
    if problem:
        raise ChainMapError([(filename, problem.line, problem.message)])
    if not isinstance(doc, MarkedDict):
        raise ChainMapError([(filename, 1, "文件顶层必须是映射（包含 id、name、links 等字段）")])
    _check_unknown(doc, CHAIN_KEYS, "产业链", errors)

    chain_id = _text(doc.get("id"))
    if not chain_id:
        errors.add(doc.line, "缺少产业链 id")
    elif not SLUG_RE.match(chain_id):
        errors.add(doc.line_of("id"), f"产业链 id 必须是小写字母、数字和连字符组成的标识：{chain_id}")
    name = _text(doc.get("name"))
    if not name:
        errors.add(doc.line_of("name"), "产业链名称不能为空")

    links: list[ParsedLink] = []
    seen: dict[str, int] = {}

    def walk(items: Any, container: Any, key: Any, parent: ParsedLink | None, depth: int) -> None:
        if not isinstance(items, list):
            errors.add(line_of(container, key), "links/children 必须是列表")
            return
        if depth > MAX_DEPTH:
            errors.add(line_of(container, key), f"环节层级超过 {MAX_DEPTH} 层")
            return
        for index, item in enumerate(items):
            item_line = line_of(items, index)
            if not isinstance(item, MarkedDict):
                errors.add(item_line, "每个环节必须是映射（包含 id、name 等字段）")
                continue
            _check_unknown(item, LINK_KEYS, "环节", errors)
            key_ = _text(item.get("id"))
            if not key_:
                errors.add(item.line, "环节缺少 id")
            elif not SLUG_RE.match(key_):
                errors.add(item.line_of("id"), f"环节 id 必须是小写字母、数字和连字符组成的标识：{key_}")
            elif chain_id and not key_.startswith(chain_id + "-"):
                errors.add(item.line_of("id"), f"环节 id {key_} 必须以产业链 id 加连字符（{chain_id}-）开头")
            if key_ in seen:
                errors.add(item.line_of("id"), f"环节 id 重复：{key_}（首次出现在第 {seen[key_]} 行）")
            elif key_:
                seen[key_] = item.line_of("id")
            link_name = _text(item.get("name"))
            if not link_name:
                errors.add(item.line_of("name"), f"环节 {key_ or '?'} 的名称不能为空")
            stage = _text(item.get("stage"))
            if not stage:
                if parent is None:
                    errors.add(item.line, f"顶层环节 {key_ or '?'} 缺少 stage（上游/中游/下游）")
                else:
                    stage = parent.stage
            elif stage not in STAGES:
                errors.add(item.line_of("stage"), f"环节 {key_ or '?'} 的 stage 无效：{stage}（应为 上游/中游/下游）")
            lists = {f: _string_list(item, f, errors, f"环节 {key_ or '?'} 的 ") for f in LIST_FIELDS}
            for code in lists["industry_codes"]:
                problem_ = industry_code_problem(code)
                if problem_:
                    errors.add(item.line_of("industry_codes"), problem_)
            key_tech = item.get("key_tech", False)
            if key_tech is None:
                key_tech = False
            if not isinstance(key_tech, bool):
                errors.add(item.line_of("key_tech"), f"环节 {key_ or '?'} 的 key_tech 必须是 true 或 false")
                key_tech = False
            link = ParsedLink(
                key=key_,
                name=link_name,
                stage=stage,
                parent_key=parent.key if parent else None,
                depth=depth,
                position=len(links),
                line=item.line,
                description=_text(item.get("description")),
                key_tech=key_tech,
                key_tech_note=_text(item.get("key_tech_note")),
                **lists,
            )
            links.append(link)
            if item.get("children") is not None:
                walk(item["children"], item, "children", link, depth + 1)

    if "links" not in doc or not doc.get("links"):
        errors.add(doc.line_of("links"), "产业链至少需要一个环节（links）")
    else:
        walk(doc["links"], doc, "links", None, 1)

    edges: list[tuple[str, str, str]] = []
    edge_lines: dict[tuple[str, str], int] = {}
    supply = doc.get("supply")
    if supply is not None and not isinstance(supply, list):
        errors.add(doc.line_of("supply"), "supply 必须是列表")
        supply = []
    for index, edge in enumerate(supply or []):
        edge_line = line_of(supply, index)
        if not isinstance(edge, MarkedDict):
            errors.add(edge_line, "供应关系必须是映射 {from: …, to: …}")
            continue
        _check_unknown(edge, EDGE_KEYS, "供应关系", errors)
        src, dst = _text(edge.get("from")), _text(edge.get("to"))
        for end in (src, dst):
            if not end:
                errors.add(edge.line, "供应关系缺少 from 或 to")
            elif end not in seen:
                errors.add(edge.line, f"供应关系引用了不存在的环节：{end}")
        if src and dst and src in seen and dst in seen:
            if (src, dst) in edge_lines:
                errors.add(edge.line, f"供应关系重复：{src} → {dst}")
                continue
            edge_lines[(src, dst)] = edge.line
            edges.append((src, dst, _text(edge.get("note"))))
    cycle = _find_cycle([(s, d) for s, d, _ in edges])
    if cycle:
        path = " → ".join(cycle)
        errors.add(edge_lines.get((cycle[-2], cycle[-1])), f"供应关系存在环：{path}")

    if errors.errors:
        raise ChainMapError(errors.errors)
    return ParsedChain(
        id=chain_id,
        name=name,
        sector=_text(doc.get("sector")),
        declared_version=_text(doc.get("version")),
        description=_text(doc.get("description")),
        source=_text(doc.get("source")),
        links=links,
        edges=edges,
        source_file=filename,
    )


def _find_cycle(edges: list[tuple[str, str]]) -> list[str] | None:
    """A cycle in the directed supply graph as a node path (first == last), or None."""
    graph: dict[str, list[str]] = {}
    for s, d in edges:
        graph.setdefault(s, []).append(d)
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def parse_chain_file(path: str | Path) -> ParsedChain:
    path = Path(path)
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ChainMapError([(str(path), None, f"无法读取文件：{exc}")]) from exc
    return parse_chain_text(text, str(path))
