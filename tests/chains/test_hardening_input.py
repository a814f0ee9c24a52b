"""Hostile input: header detection in linear time, YAML aliases refused, JSON bodies limited (issue 19)."""

from __future__ import annotations

import re
import time

import pytest

from chains.enterprises.readers import normalise_header, read_table, split_unit_suffix

LONG_CELL = 40_000  # characters: quadratic matching took minutes here, linear takes milliseconds
LINEAR_BUDGET_SECONDS = 0.5
_OLD_PATTERN = re.compile(r"[（(]([^）)]*)[）)]$")


@pytest.mark.parametrize("cell", ["(" * LONG_CELL, "（" * LONG_CELL, "(a" * (LONG_CELL // 2) + ")", "x)" * LONG_CELL])
def test_header_normalisation_is_linear_on_bracket_runs(cell):
    started = time.perf_counter()
    normalise_header(cell)
    split_unit_suffix(cell)
    assert time.perf_counter() - started < LINEAR_BUDGET_SECONDS


def test_csv_with_a_huge_bracket_cell_is_read_quickly(tmp_path):
    path = tmp_path / "hostile.csv"
    path.write_text("(" * LONG_CELL + ",企业名称,统一社会信用代码\n,青岛海工装备有限公司,\n", encoding="utf-8")
    started = time.perf_counter()
    table = read_table(path)
    assert len(list(table.rows)) == 1
    assert time.perf_counter() - started < LINEAR_BUDGET_SECONDS * 4


@pytest.mark.parametrize(
    "text",
    [
        "注册资本(万元)",
        "注册资本（元）",
        "a(b)(c)",
        "a(b(c)",
        "a)b(c)",
        "()",
        "(",
        ")",
        "a(b)c",
        "x（y)",
        "no brackets",
        "((a))",
        "a(b）",
    ],
)
def test_unit_suffix_split_agrees_with_the_old_pattern(text):
    match = _OLD_PATTERN.search(text)
    expected = (text[: match.start()], match.group(1)) if match else (text, None)
    assert split_unit_suffix(text) == expected


# ----------------------------------------------------------------------------- YAML aliases (item 6)


def _nested_aliases(levels: int = 9) -> str:
    """A ~700-byte chain file whose aliases expand to 10**levels nodes ("billion laughs")."""
    lines = ["id: bomb", "name: 炸弹", 'a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 10) + "]")
    lines.append(f"links: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_yaml_aliases_are_refused_before_expansion():
    from chains.yaml_marks import load_marked

    text = _nested_aliases()
    assert len(text) < 1000
    started = time.perf_counter()
    doc, problem = load_marked(text)
    assert doc is None and problem is not None
    assert "别名" in problem.message and problem.line == 4
    assert time.perf_counter() - started < LINEAR_BUDGET_SECONDS


def test_chain_file_with_aliases_is_a_validation_error():
    from chains.chainmap_parse import ChainMapError, parse_chain_text

    with pytest.raises(ChainMapError) as info:
        parse_chain_text("id: x\nname: &n 链\nlinks: []\nalias_of_name: *n\n", "x.yaml")
    assert "别名" in str(info.value)


def test_anchors_without_aliases_still_load():
    from chains.yaml_marks import load_marked

    doc, problem = load_marked("a: &x 1\nb: 2\n")
    assert problem is None and doc == {"a": 1, "b": 2}
