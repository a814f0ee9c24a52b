"""Reading enterprise tables: CSV encodings, XLSX, title rows above the header, header synonyms, mappings."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from openpyxl import Workbook

from chains.enterprises.readers import TableReadError, read_table

HEADER = ["企业名称", "统一社会信用代码", "注册资本", "成立日期", "所属城市"]
ROWS = [
    ["青岛海工装备有限公司", "", "500万元人民币", "2015-03-02", "青岛市"],
    ["烟台船舶配套股份有限公司", "", "1.2亿元", "2010年5月6日", "烟台市"],
]


def write_csv(path, rows, encoding="utf-8"):
    text = "\n".join(",".join(r) for r in rows) + "\n"
    path.write_bytes(text.encode(encoding))
    return path


def records(path, mapping=None):
    table = read_table(path, mapping)
    return table, list(table.rows)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings(tmp_path, encoding):
    rows = (
        [HEADER]
        + ROWS
        + [["𠮷字测试企业（GB18030 四字节）", "", "", "", "北京市"]] * (encoding in ("utf-8", "gb18030"))
    )
    table, got = records(write_csv(tmp_path / "f.csv", rows, encoding))
    assert got[0][1]["name"] == "青岛海工装备有限公司"
    assert got[1][1]["capital"] == "1.2亿元" and got[1][1]["city"] == "烟台市"
    assert [line for line, _ in got][:2] == [2, 3]
    if len(rows) == 4:
        assert got[2][1]["name"].startswith("𠮷")


def test_title_and_blank_rows_above_the_header_are_skipped(tmp_path):
    rows = [
        ["2024年青岛市重点企业名单", "", "", "", ""],
        ["", "", "", "", ""],
        ["数据截至：2024-06", "", "", "", ""],
        HEADER,
    ] + ROWS
    table, got = records(write_csv(tmp_path / "f.csv", rows))
    assert table.header_row == 4
    assert [line for line, _ in got] == [5, 6]


@pytest.mark.parametrize(
    "header",
    [
        ["公司名称", "信用代码", "注册资金", "成立时间", "城市"],
        ["企业名称 ", "统一社会信用代码*", "注册资本(万元)", "成立日期", "所属城市"],
        ["Company", "USCC", "capital", "founded", "city"],
    ],
)
def test_header_synonyms(tmp_path, header):
    table, got = records(write_csv(tmp_path / "f.csv", [header] + ROWS))
    assert set(table.columns.values()) == {"name", "credit_code", "capital", "founded_on", "city"}
    assert got[0][1]["name"] == "青岛海工装备有限公司"


def test_all_documented_synonyms_are_recognised(tmp_path):
    header = [
        "企业名称",
        "统一社会信用代码",
        "经营范围",
        "国标行业",
        "注册资本",
        "成立时间",
        "所属省份",
        "所属城市",
        "所属区县",
        "经营状态",
        "企业标签",
        "参保人数",
        "营业收入",
        "曾用名",
        "地址",
        "主营产品",
        "国家",
        "企业ID",
    ]
    table, _ = records(write_csv(tmp_path / "f.csv", [header, ["甲公司"] + [""] * 17]))
    assert len(table.columns) == len(header) and not table.unmapped


def test_configurable_mapping_dict_and_json_file(tmp_path):
    path = write_csv(tmp_path / "f.csv", [["单位", "行业门类代码", "备注信息"], ["甲公司", "C3841", "x"]])
    with pytest.raises(TableReadError):
        read_table(path)
    mapping = {"单位": "企业名称", "行业门类代码": "industry_code"}
    _, got = records(path, mapping)
    assert got[0][1] == {"name": "甲公司", "industry_code": "C3841"}
    map_file = tmp_path / "map.json"
    map_file.write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    _, got = records(path, str(map_file))
    assert got[0][1]["industry_code"] == "C3841"
    with pytest.raises(TableReadError, match="无法识别"):
        read_table(path, {"单位": "不存在的字段"})


def test_xlsx_with_title_rows_and_typed_cells(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["某某园区企业清单"])
    sheet.append([])
    sheet.append(HEADER)
    sheet.append(["青岛海工装备有限公司", None, 500, datetime(2015, 3, 2), "青岛市"])
    sheet.append(["烟台船舶配套股份有限公司", None, "1.2亿元", 42065, "烟台市"])
    path = tmp_path / "f.xlsx"
    workbook.save(path)
    table, got = records(path)
    assert table.header_row == 3
    assert got[0] == (
        4,
        {
            "name": "青岛海工装备有限公司",
            "credit_code": None,
            "capital": 500,
            "founded_on": datetime(2015, 3, 2),
            "city": "青岛市",
        },
    )
    assert got[1][1]["founded_on"] == 42065


def test_unreadable_files_raise_a_chinese_message(tmp_path):
    (tmp_path / "bad.xlsx").write_bytes(b"not a zip file")
    with pytest.raises(TableReadError, match="Excel"):
        read_table(tmp_path / "bad.xlsx")
    with pytest.raises(TableReadError, match="不支持"):
        read_table(tmp_path / "x.pdf")
    with pytest.raises(TableReadError, match="表头"):
        read_table(write_csv(tmp_path / "noheader.csv", [["a", "b"], ["1", "2"]]))
    with pytest.raises(TableReadError, match="无法读取"):
        read_table(tmp_path / "missing.csv")
