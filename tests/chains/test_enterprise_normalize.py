"""Field normalisation of enterprise rows: credit codes, capital, dates, status, tags, industry codes, row parsing."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chains.enterprises import capital as cap
from chains.enterprises import normalize as nz
from chains.enterprises.creditcode import (
    CHARSET,
    check_character,
    credit_code_error,
    is_valid_credit_code,
    normalize_credit_code,
)
from chains.enterprises.rows import parse_row

# Codes published on business licences (public registry data), used only to check the algorithm.
PUBLISHED_CODES = ["914403001922038216", "91110000802100433B"]


def make_code(body: str) -> str:
    return body + check_character(body)


def test_published_codes_are_valid():
    for code in PUBLISHED_CODES:
        assert is_valid_credit_code(code)


def test_check_character_detects_any_single_substitution():
    code = make_code("91330106MA2B3C4D5")
    assert is_valid_credit_code(code)
    for position in range(18):
        for replacement in "0A":
            if code[position] == replacement:
                continue
            altered = code[:position] + replacement + code[position + 1 :]
            assert not is_valid_credit_code(altered), altered


def test_full_width_spaces_and_lower_case_are_normalised():
    code = make_code("91320594MA1MXY2K3")
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code.lower())
    assert normalize_credit_code(f" {full_width[:6]} {full_width[6:]} ") == code
    assert is_valid_credit_code(full_width)


@pytest.mark.parametrize(
    "value, message",
    [
        ("91440300192203821", "18位"),
        ("91440300192203821I", "非法字符"),
        ("914403001922038217", "校验位"),
    ],
)
def test_invalid_codes_say_why(value, message):
    assert message in credit_code_error(normalize_credit_code(value))


def test_charset_excludes_confusable_letters():
    assert not set("IOSVZ") & set(CHARSET) and len(CHARSET) == 31


@pytest.mark.parametrize(
    "text, amount, currency, cny",
    [
        ("500万元人民币", 500, "CNY", 500),
        ("500万人民币", 500, "CNY", 500),
        ("1.2亿元", 12000, "CNY", 12000),
        ("100万美元", 100, "USD", 100 * cap.FX_TO_CNY["USD"]),
        ("50万欧元", 50, "EUR", 50 * cap.FX_TO_CNY["EUR"]),
        ("300万港元", 300, "HKD", 300 * cap.FX_TO_CNY["HKD"]),
        ("5,000,000元", 500, "CNY", 500),
        ("500", 500, "CNY", 500),
        (500, 500, "CNY", 500),
        (1234.5, 1234.5, "CNY", 1234.5),
        ("（人民币）２００万", 200, "CNY", 200),
    ],
)
def test_capital_forms(text, amount, currency, cny):
    capital = cap.parse_capital(text)
    assert capital.amount_wan == pytest.approx(amount)
    assert capital.currency == currency
    assert capital.wan_cny == pytest.approx(cny)


def test_capital_unit_from_header_and_unreadable_values():
    assert cap.parse_capital("5000000", cap.UNIT_YUAN).amount_wan == pytest.approx(500)
    for value in ("", "-", "不详", "abc", None, float("nan")):
        assert cap.parse_capital(value) is None


def test_capital_round_trips_through_the_export_format():
    for text in ("500万元人民币", "100万美元", "1.2亿元", "50万欧元"):
        capital = cap.parse_capital(text)
        again = cap.parse_capital(cap.format_capital(capital.amount_wan, capital.currency))
        assert again == capital


@pytest.mark.parametrize(
    "value",
    [
        "2015-03-02",
        "2015/3/2",
        "2015.3.2",
        "2015年3月2日",
        "20150302",
        20150302,
        42065,
        42065.0,
        "42065",
        datetime(2015, 3, 2, 0, 0),
        date(2015, 3, 2),
        "2015-03-02 00:00:00",
        " 2015 年 03 月 02 日 ",
    ],
)
def test_date_forms(value):
    assert nz.parse_date(value) == date(2015, 3, 2)


@pytest.mark.parametrize("value", ["", "不详", "2015-13-01", "2015-02-30", "abc", None, "99999999"])
def test_unreadable_dates_are_none(value):
    assert nz.parse_date(value) is None


@pytest.mark.parametrize(
    "raw, status",
    [
        ("存续", "存续"),
        ("存续（在营、开业、在册）", "存续"),
        ("在业", "在业"),
        ("开业", "存续"),
        ("迁出", "迁出"),
        ("注销", "注销"),
        ("已注销", "注销"),
        ("吊销，未注销", "吊销"),
        ("吊销", "吊销"),
        ("停业", "停业"),
        ("清算", "清算"),
        ("其它奇怪状态", "其他"),
        ("", ""),
    ],
)
def test_status_normalisation(raw, status):
    assert nz.normalize_status(raw) == status


def test_tags_split_normalise_and_deduplicate():
    assert nz.parse_tags("上市；专精特新“小巨人”,高新技术企业、上市") == ["上市", '专精特新"小巨人"', "高新技术企业"]
    assert nz.parse_tags('专精特新"小巨人";瞪羚企业') == ['专精特新"小巨人"', "瞪羚"]
    assert nz.parse_tags("") == []


@pytest.mark.parametrize(
    "value, parts",
    [
        ("C3841", ("C", "38", "384", "3841")),
        ("c 384", ("C", "38", "384", "")),
        ("3841", ("C", "38", "384", "3841")),
        ("C38", ("C", "38", "", "")),
        ("C", ("C", "", "", "")),
        ("I6513 应用软件开发", ("I", "65", "651", "6513")),
        ("Ｃ３８４１", ("C", "38", "384", "3841")),
    ],
)
def test_industry_codes(value, parts):
    code = nz.parse_industry_code(value)
    assert (code.section, code.division, code.group, code.klass) == parts


@pytest.mark.parametrize("value", ["A38", "Z99", "制造业", "", "X"])
def test_invalid_industry_codes(value):
    assert nz.parse_industry_code(value) is None


def test_regions_and_names():
    assert nz.normalize_province("广东") == "广东省" and nz.normalize_province("内蒙古") == "内蒙古自治区"
    assert nz.normalize_city("深圳") == "深圳市" and nz.normalize_city("延边朝鲜族自治州") == "延边朝鲜族自治州"
    assert nz.clean_name(" 青岛 海工 装备有限公司(黄岛) ") == "青岛海工装备有限公司（黄岛）"
    assert nz.name_key("青岛海工装备有限公司（黄岛）") == nz.name_key("青岛海工装备有限公司 (黄岛)")


def test_parse_row_collects_values_warnings_and_errors():
    code = make_code("91370211MA3C1234X")
    row = parse_row(
        {
            "name": "青岛某装备有限公司",
            "credit_code": code,
            "capital": "1.2亿元",
            "founded_on": "2015年3月2日",
            "status": "存续（在营、开业、在册）",
            "industry_name": "C3734 船舶改装",
            "tags": "上市；瞪羚",
            "province": "山东",
            "city": "青岛",
            "employees": "1,234人",
            "data_note": "合成数据：测试",
        }
    )
    v = row.values
    assert not row.errors and not row.warnings
    assert v["credit_code"] == code and v["capital_wan_cny"] == 12000 and v["founded_on"] == date(2015, 3, 2)
    assert v["status"] == "存续" and v["industry_class"] == "3734" and v["industry_name"] == "船舶改装"
    assert (v["province"], v["city"], v["employees"]) == ("山东省", "青岛市", 1234)
    assert row.tags == ["上市", "瞪羚"] and v["is_synthetic"] and not v["is_demo"]
    bad = parse_row({"name": "", "credit_code": "123", "founded_on": "某天"})
    assert any("企业名称" in e for e in bad.errors) and any("18位" in e for e in bad.errors)
    assert any("成立日期" in w for w in bad.warnings)


FIELDS = [
    "name",
    "credit_code",
    "external_id",
    "status",
    "founded_on",
    "capital",
    "province",
    "city",
    "district",
    "industry_code",
    "industry_name",
    "business_scope",
    "tags",
    "employees",
    "revenue",
    "former_names",
    "data_note",
    "country",
    "main_products",
    "address",
]
cells = st.one_of(
    st.text(max_size=60),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.dates(),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), cells))
def test_parse_row_never_raises(raw):
    row = parse_row(raw)
    assert isinstance(row.errors, list)
    if not row.errors:
        assert row.values["name"]
        row.identity  # noqa: B018 - identity is always computable


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_parsers_never_raise_on_text(text):
    cap.parse_capital(text)
    nz.parse_date(text)
    nz.parse_industry_code(text)
    nz.parse_tags(text)
    nz.parse_int(text)
    nz.normalize_status(text)
    credit_code_error(normalize_credit_code(text))
