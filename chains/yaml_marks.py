"""YAML loading that remembers line numbers, so validation errors can name file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml


class MarkedDict(dict[Any, Any]):
    """A mapping from YAML with the line of the mapping and of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]
    duplicate_keys: list[tuple[Any, int]]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class MarkedList(list[Any]):
    """A sequence from YAML with the line of the sequence and of each item (1-based)."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


ALIAS_REFUSED = "不支持 YAML 别名（*名称）：请直接写出内容"


class AliasRefused(yaml.MarkedYAMLError):
    """An alias in the document: refused before it is expanded (nested aliases grow exponentially)."""


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences carry their source lines, refusing aliases."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Refuse an alias as soon as the parser reports it, before anything is expanded."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise AliasRefused(None, None, ALIAS_REFUSED, event.start_mark)
        return super().compose_node(parent, index)


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[MarkedDict]:
    data = MarkedDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    data.duplicate_keys = []
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            key = str(key)
        if key in data.key_lines:
            data.duplicate_keys.append((key, key_node.start_mark.line + 1))
        data.key_lines[key] = key_node.start_mark.line + 1
        data[key] = loader.construct_object(value_node, deep=True)


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[MarkedList]:
    data = MarkedList()
    data.line = node.start_mark.line + 1
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


@dataclass
class YamlProblem:
    line: int | None
    message: str


def load_marked(text: str) -> tuple[Any, YamlProblem | None]:
    """Parse YAML text into Marked* containers; on a syntax error return (None, problem)."""
    try:
        return yaml.load(text, Loader=_LineLoader), None  # noqa: S506 - SafeLoader subclass
    except AliasRefused as exc:
        return None, YamlProblem(exc.problem_mark.line + 1 if exc.problem_mark else None, ALIAS_REFUSED)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, YamlProblem(line, f"YAML 语法错误：{exc.problem or exc}")
    except yaml.YAMLError as exc:
        return None, YamlProblem(None, f"YAML 语法错误：{exc}")


def read_text(path: Path) -> str:
    """Read a UTF-8 file (a BOM is tolerated)."""
    return path.read_text(encoding="utf-8-sig")


def line_of(container: Any, key: Any, default: int | None = None) -> int | None:
    """Line of `key` in a MarkedDict/MarkedList, else the container's own line, else `default`."""
    if isinstance(container, MarkedDict):
        return container.line_of(key)
    if isinstance(container, MarkedList) and isinstance(key, int):
        return container.line_of(key)
    return getattr(container, "line", default) or default
