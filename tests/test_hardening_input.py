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


@pytest.mark.parametrize("text", ["注册资本(万元)", "注册资本（元）", "a(b)(c)", "a(b(c)", "a)b(c)", "()", "(", ")",
                                  "a(b)c", "x（y)", "no brackets", "((a))", "a(b）"])
def test_unit_suffix_split_agrees_with_the_old_pattern(text):
    match = _OLD_PATTERN.search(text)
    expected = (text[:match.start()], match.group(1)) if match else (text, None)
    assert split_unit_suffix(text) == expected
