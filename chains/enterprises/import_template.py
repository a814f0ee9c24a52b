"""The enterprise import template: the export's columns with no rows, and a sheet that says what each column takes.

A template filled in imports as is (the columns are the export's, which re-import); the notes sheet also lists the
other header spellings the importer recognises, so a registry export (企查查, 天眼查) needs no renaming.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from chains.enterprises.exporter import EXPORT_HEADER
from chains.enterprises.readers import FIELD_SYNONYMS, normalise_header
from chains.excel import write_xlsx

TEMPLATE_SHEET = "企业名单"
NOTES_SHEET = "字段说明"
NOTES_HEADER = ["列名", "是否必填", "填写说明", "也可识别的表头"]
REQUIRED_COLUMNS = ("企业名称",)  # a row without it is rejected (chains.enterprises.rows)

# One note per column of EXPORT_HEADER (a test checks both lists match); what the importer accepts, in users' words.
COLUMN_NOTES: dict[str, str] = {
    "外部编号": "本单位或数据来源的企业编号；没有统一社会信用代码时，用它识别同一企业",
    "企业名称": "企业全称",
    "统一社会信用代码": "18位代码，校验位不符的行会被拒绝；可留空，此时按外部编号或“企业名称+城市”识别同一企业",
    "登记状态": "如 存续、在业、迁出、注销、吊销",
    "成立日期": "如 2015-03-02、2015/3/2、2015年3月2日，或 Excel 日期",
    "注册资本": "默认单位万元；可带单位和币种，如 500万元人民币、1.2亿元、100万美元",
    "省份": "如 山东省",
    "城市": "如 青岛市",
    "区县": "如 黄岛区",
    "注册地址": "登记住所",
    "法定代表人": "链主企业账号看不到联系方式（法定代表人、电话、邮箱、网址）",
    "电话": "多个号码用分号分隔；页面上可点击拨打第一个号码",
    "邮箱": "页面上可点击发送邮件",
    "网址": "企业官网",
    "国标行业代码": "GB/T 4754-2017 代码，如 C3734；门类字母可省略（3734）",
    "所属行业": "国标行业名称，如 船舶改装",
    "经营范围": "营业执照登记的经营范围；匹配候选企业的依据之一",
    "主营产品": "主要产品或业务；匹配的重要依据，写得越具体，匹配越准",
    "企业标签": "多个标签用分号、逗号或顿号分隔，如 高新技术企业；专精特新",
    "参保人数": "整数，如 120",
    "营业收入": "默认单位万元；可带单位，如 12000、1.2亿元",
    "曾用名": "多个用分号或顿号分隔",
    "国家": "留空即 中国；境外企业填写国家或地区",
    "数据说明": "数据来源或备注，如 2026年企查查导出",
}


def other_spellings(column: str) -> list[str]:
    """The other header spellings the importer reads as this column (without the column's own name)."""
    own = normalise_header(column)
    for spellings in FIELD_SYNONYMS.values():
        if own in {normalise_header(s) for s in spellings}:
            return [s for s in spellings if normalise_header(s) != own]
    return []


def notes_rows() -> list[list[str]]:
    """The 字段说明 sheet's rows: column, required, note, other spellings."""
    return [
        [
            column,
            "必填" if column in REQUIRED_COLUMNS else "选填",
            COLUMN_NOTES[column],
            "、".join(other_spellings(column)),
        ]
        for column in EXPORT_HEADER
    ]


def write_import_template(target: str | Path | IO[bytes]) -> None:
    """Write the template (.xlsx): an empty 企业名单 sheet with the columns, then the 字段说明 sheet."""
    write_xlsx(target, [(TEMPLATE_SHEET, EXPORT_HEADER, []), (NOTES_SHEET, NOTES_HEADER, notes_rows())])
