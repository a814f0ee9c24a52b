"""Coded field columns (matching.engine.fields) filter rows exactly as the plain values do (matching.vectors.filters)."""

from __future__ import annotations

import random

import numpy as np

from matching.engine.fields import COMPARE_MAX_VALUES, CodedColumn
from matching.vectors.filters import condition, condition_mask

PROVINCES = ["山东省", "浙江省", "江苏省", "", None]
TAGS = ["专精特新", "高新技术企业", "上市", "瞪羚"]


def _scalar_column(rng: random.Random, n: int) -> list:
    return [rng.choice(PROVINCES) for _ in range(n)]


def _list_column(rng: random.Random, n: int) -> list:
    return [None if rng.random() < 0.2 else rng.sample(TAGS, rng.randint(0, 3)) for _ in range(n)]


def test_coded_scalar_column_passes_the_rows_the_plain_values_pass():
    rng = random.Random(3)
    column = _scalar_column(rng, 500)
    coded = CodedColumn(column)
    for op in ("in", "not_in", "eq", "ne"):
        for values in (["山东省"], ["浙江省", "江苏省"], ["新疆维吾尔自治区"], ["山东省", "不存在"]):
            c = condition("province", op, values if op in ("in", "not_in") else values[0])
            assert np.array_equal(coded.condition(c), condition_mask(c, column)), (op, values)


def test_conditions_listing_many_values_pass_the_rows_the_plain_values_pass():
    """A condition listing more values than COMPARE_MAX_VALUES takes the table look-up instead of comparisons."""
    rng = random.Random(4)
    cities = [f"城市{i}" for i in range(40)]
    column = [rng.choice([*cities, "", None]) for _ in range(800)]
    coded = CodedColumn(column)
    for size in (1, COMPARE_MAX_VALUES, COMPARE_MAX_VALUES + 1, 30):
        values = [*rng.sample(cities, size - 1), "不存在的城市"]
        for op in ("in", "not_in"):
            c = condition("city", op, values)
            assert np.array_equal(coded.condition(c), condition_mask(c, column)), (op, size)


def test_coded_list_column_passes_the_rows_holding_any_of_the_items():
    rng = random.Random(5)
    column = _list_column(rng, 500)
    coded = CodedColumn(column)
    for values in (["专精特新"], ["上市", "瞪羚"], ["不存在"], TAGS):
        c = condition("tags", "contains_any", values)
        got = coded.condition(c)
        assert np.array_equal(got, condition_mask(c, column)), values
    # A firm with no tags (None or []) is never in a tag filter.
    empty = [i for i, v in enumerate(column) if not v]
    assert empty and not coded.condition(condition("tags", "contains_any", TAGS))[empty].any()


def test_tuples_and_frozensets_make_a_list_column_too():
    """Tags given as tuples or frozensets (hashable, unlike lists) still filter by item, not by the whole value."""
    column = [("专精特新", "上市"), None, frozenset({"瞪羚"}), ("上市",), ()]
    coded = CodedColumn(column)
    assert coded.is_list
    c = condition("tags", "contains_any", ["上市"])
    assert coded.condition(c).tolist() == [True, False, False, True, False] == condition_mask(c, column).tolist()
