"""Enterprise import into the database (SQLite and PostgreSQL): identity, merge, report, idempotence, rollback,
export escaping, CLI contract, demo data."""

from __future__ import annotations

import csv
import json
from datetime import date

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from chains.enterprise_models import Enterprise, EnterpriseChange, EnterpriseTag
from chains.enterprises import synth
from chains.enterprises.creditcode import check_character
from chains.enterprises.exporter import export_enterprises
from chains.enterprises.importer import import_file
from webapp.extensions import db

HEADER = [
    "外部编号",
    "企业名称",
    "统一社会信用代码",
    "登记状态",
    "成立日期",
    "注册资本",
    "省份",
    "城市",
    "区县",
    "国标行业代码",
    "所属行业",
    "经营范围",
    "主营产品",
    "企业标签",
    "国家",
    "数据说明",
]
CODE_A = "91370211MA3C1234X" + check_character("91370211MA3C1234X")
CODE_B = "91320594MA1MXY2K3" + check_character("91320594MA1MXY2K3")


def row(**kw) -> list[str]:
    defaults = {
        "外部编号": "",
        "企业名称": "",
        "统一社会信用代码": "",
        "登记状态": "存续",
        "成立日期": "2015-03-02",
        "注册资本": "500万元人民币",
        "省份": "山东省",
        "城市": "青岛市",
        "区县": "黄岛区",
        "国标行业代码": "C3734",
        "所属行业": "船舶改装",
        "经营范围": "船舶配套设备的研发、生产",
        "主营产品": "甲板机械",
        "企业标签": "高新技术企业",
        "国家": "中国",
        "数据说明": "合成数据：测试",
    }
    defaults.update(kw)
    return [defaults[h] for h in HEADER]


def write_csv(path, rows, encoding="utf-8"):
    with open(path, "w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def snapshot():
    """Every row of the enterprise tables, for before/after comparisons."""
    ents = db.session.execute(select(Enterprise.__table__).order_by(Enterprise.id)).all()
    tags = db.session.execute(
        select(EnterpriseTag.__table__).order_by(EnterpriseTag.enterprise_id, EnterpriseTag.tag)
    ).all()
    changes = db.session.execute(select(EnterpriseChange.__table__).order_by(EnterpriseChange.id)).all()
    return [tuple(r) for r in ents], [tuple(r) for r in tags], [tuple(r) for r in changes]


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def by_name(name: str) -> Enterprise:
    return db.session.scalars(select(Enterprise).where(Enterprise.name == name)).one()


def test_import_inserts_parsed_fields_then_reimport_changes_nothing(app, tmp_path):
    path = write_csv(
        tmp_path / "firms.csv",
        [
            row(
                企业名称="青岛甲装备有限公司",
                统一社会信用代码=CODE_A,
                企业标签="上市；专精特新“小巨人”",
                注册资本="100万美元",
            ),
            row(企业名称="青岛乙科技有限公司", 外部编号="ext-b", 成立日期="2018年7月1日", 登记状态="吊销，未注销"),
            row(企业名称="青岛丙材料有限公司", 城市="青岛", 国标行业代码="", 所属行业="C2924 夹芯材料"),
        ],
    )
    with app.app_context():
        result = import_file(db.session, path)
        assert result.counts() == {"inserted": 3, "updated": 0, "unchanged": 0, "rejected": 0, "duplicates_merged": 0}
        a = by_name("青岛甲装备有限公司")
        assert a.credit_code == CODE_A and a.capital_currency == "USD" and a.capital_amount == 100
        assert a.tag_names == sorted(["上市", '专精特新"小巨人"']) and a.is_synthetic and a.source_file == "firms.csv"
        b = by_name("青岛乙科技有限公司")
        assert b.external_id == "ext-b" and b.founded_on == date(2018, 7, 1) and b.status == "吊销"
        c = by_name("青岛丙材料有限公司")
        assert (c.industry_section, c.industry_class, c.industry_name, c.city) == ("C", "2924", "夹芯材料", "青岛市")
        before = snapshot()
        again = import_file(db.session, path)
        assert again.counts() == {"inserted": 0, "updated": 0, "unchanged": 3, "rejected": 0, "duplicates_merged": 0}
        assert snapshot() == before


def test_identity_rules_update_the_right_firm_and_record_changes(app, tmp_path):
    first = write_csv(
        tmp_path / "v1.csv",
        [
            row(企业名称="甲公司", 统一社会信用代码=CODE_A),
            row(企业名称="乙公司", 外部编号="ext-b"),
            row(企业名称="丙公司", 城市="青岛市"),
            row(企业名称="丙公司", 城市="烟台市"),
        ],
    )
    second = write_csv(
        tmp_path / "v2.csv",
        [
            row(
                企业名称="甲公司（新名）", 统一社会信用代码=CODE_A.lower(), 注册资本="800万元人民币"
            ),  # same code → update
            row(企业名称="乙公司改名", 外部编号="ext-b", 企业标签="瞪羚"),  # same external id → update
            row(企业名称="丙 公司", 城市="烟台", 登记状态="注销"),  # same normalised name + city → update that one
            row(企业名称="丁公司", 统一社会信用代码=CODE_B),  # new
        ],
    )
    with app.app_context():
        import_file(db.session, first)
        result = import_file(db.session, second)
        assert result.counts() == {"inserted": 1, "updated": 3, "unchanged": 0, "rejected": 0, "duplicates_merged": 0}
        assert count(Enterprise) == 5
        a = db.session.scalars(select(Enterprise).where(Enterprise.credit_code == CODE_A)).one()
        assert a.name == "甲公司（新名）" and a.capital_amount == 800
        changes = {
            (c.field, c.old_value, c.new_value, c.source_file)
            for c in db.session.scalars(select(EnterpriseChange).where(EnterpriseChange.enterprise_id == a.id))
        }
        assert ("capital_amount", "500", "800", "v2.csv") in changes and (
            "name",
            "甲公司",
            "甲公司（新名）",
            "v2.csv",
        ) in changes
        b = db.session.scalars(select(Enterprise).where(Enterprise.external_id == "ext-b")).one()
        assert b.name == "乙公司改名" and b.tag_names == ["瞪羚"]
        assert count(EnterpriseChange, EnterpriseChange.enterprise_id == b.id, EnterpriseChange.field == "tags") == 1
        yantai = db.session.scalars(
            select(Enterprise).where(Enterprise.name_norm == "丙公司", Enterprise.city == "烟台市")
        ).one()
        qingdao = db.session.scalars(
            select(Enterprise).where(Enterprise.name_norm == "丙公司", Enterprise.city == "青岛市")
        ).one()
        assert yantai.status == "注销" and qingdao.status == "存续"


def test_empty_cells_do_not_erase_stored_values(app, tmp_path):
    with app.app_context():
        import_file(db.session, write_csv(tmp_path / "a.csv", [row(企业名称="甲公司", 外部编号="x1")]))
        result = import_file(
            db.session,
            write_csv(
                tmp_path / "b.csv",
                [row(企业名称="甲公司", 外部编号="x1", 经营范围="", 注册资本="", 企业标签="", 成立日期="")],
            ),
        )
        assert result.unchanged == 1
        firm = by_name("甲公司")
        assert firm.business_scope and firm.capital_amount == 500 and firm.tag_names == ["高新技术企业"]


def test_rejections_duplicates_and_the_row_report(app, tmp_path):
    bad_code = CODE_A[:-1] + ("0" if CODE_A[-1] != "0" else "1")
    path = write_csv(
        tmp_path / "mixed.csv",
        [
            row(企业名称="甲公司", 统一社会信用代码=CODE_A, 注册资本="100万元人民币"),  # line 2, merged into line 5
            row(企业名称="", 外部编号="no-name"),  # line 3, rejected
            row(企业名称="坏代码公司", 统一社会信用代码=bad_code),  # line 4, rejected
            row(企业名称="甲公司", 统一社会信用代码=CODE_A, 注册资本="", 经营范围="后一行的经营范围"),  # line 5
            row(企业名称='=HYPERLINK("http://x")', 外部编号="formula"),  # line 6
            row(企业名称="日期怪公司", 外部编号="odd-date", 成立日期="某年某月"),  # line 7, inserted with a warning
        ],
    )
    report_path = tmp_path / "report.csv"
    with app.app_context():
        result = import_file(db.session, path, report_path=report_path)
        assert result.counts() == {"inserted": 3, "updated": 0, "unchanged": 0, "rejected": 2, "duplicates_merged": 1}
        merged = by_name("甲公司")
        assert merged.business_scope == "后一行的经营范围" and merged.capital_amount == 100  # later wins, blanks keep
    with open(report_path, encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.DictReader(fh))
    outcome = {int(r["行号"]): r for r in lines}
    assert [int(r["行号"]) for r in lines] == [2, 3, 4, 5, 6, 7]
    assert outcome[2]["结果"] == "merged" and "第5行" in outcome[2]["原因"]
    assert outcome[3]["结果"] == "rejected" and "缺少企业名称" in outcome[3]["原因"]
    assert outcome[4]["结果"] == "rejected" and "校验位" in outcome[4]["原因"]
    assert (
        outcome[5]["结果"] == "inserted"
        and outcome[5]["标识"] == f"信用代码:{CODE_A}"
        and "第2行" in outcome[5]["原因"]
    )
    assert outcome[6]["企业名称"].startswith("'=")  # escaped for spreadsheets
    assert outcome[7]["结果"] == "inserted" and "成立日期无法识别" in outcome[7]["原因"]


def test_external_id_owned_by_another_firm_is_rejected(app, tmp_path):
    with app.app_context():
        import_file(db.session, write_csv(tmp_path / "a.csv", [row(企业名称="甲公司", 外部编号="shared")]))
        result = import_file(
            db.session,
            write_csv(tmp_path / "b.csv", [row(企业名称="乙公司", 统一社会信用代码=CODE_B, 外部编号="shared")]),
        )
        assert result.rejected == 1 and "已属于另一家企业" in result.report[0].reason
        assert count(Enterprise) == 1


def test_a_failure_mid_file_leaves_the_database_exactly_as_before(app, tmp_path):
    with app.app_context():
        import_file(
            db.session,
            write_csv(tmp_path / "base.csv", [row(企业名称=f"基础{i}公司", 外部编号=f"b{i}") for i in range(5)]),
        )
        before = snapshot()
        update_rows = [row(企业名称=f"基础{i}公司", 外部编号=f"b{i}", 登记状态="注销") for i in range(5)]
        new_rows = [row(企业名称=f"新增{i}公司", 外部编号=f"n{i}") for i in range(10)]
        calls = []

        def crash_after_two_chunks(done, total):
            calls.append(done)
            if len(calls) == 2:
                raise RuntimeError("simulated crash")

        with pytest.raises(RuntimeError):
            import_file(
                db.session,
                write_csv(tmp_path / "next.csv", update_rows + new_rows),
                progress=crash_after_two_chunks,
                chunk_size=4,
            )
        assert calls == [4, 8]  # rows had been written before the crash
        assert snapshot() == before


def test_xlsx_import_with_excel_dates_and_numbers(app, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["青岛市企业名单（2024）"])
    sheet.append(["公司名称", "信用代码", "注册资本(万元)", "成立时间", "城市", "参保人数"])
    sheet.append(["甲公司", CODE_A, 500, 42065, "青岛市", 120])
    sheet.append(["乙公司", None, 1200.5, date(2019, 1, 5), "烟台", "35人"])
    path = tmp_path / "firms.xlsx"
    workbook.save(path)
    with app.app_context():
        result = import_file(db.session, path)
        assert result.inserted == 2
        a, b = by_name("甲公司"), by_name("乙公司")
        assert a.founded_on == date(2015, 3, 2) and a.capital_wan_cny == 500 and a.employees == 120
        assert (
            b.founded_on == date(2019, 1, 5) and b.capital_amount == 1200.5 and b.city == "烟台市" and b.employees == 35
        )
        assert import_file(db.session, path).unchanged == 2


def test_csv_encodings_import_the_same(app, tmp_path):
    with app.app_context():
        for i, encoding in enumerate(["utf-8-sig", "gbk", "gb18030"]):
            name = f"青岛海工装备{i}有限公司"
            path = write_csv(tmp_path / f"{encoding}.csv", [row(企业名称=name, 外部编号=f"e{i}")], encoding=encoding)
            assert import_file(db.session, path).inserted == 1
            assert by_name(name).business_scope == "船舶配套设备的研发、生产"


def test_export_escapes_formulas_and_round_trips(app, tmp_path):
    dangerous = ["=1+1", "+CMD()", "-2+3", "@SUM(A1)"]
    path = write_csv(
        tmp_path / "in.csv", [row(企业名称=name, 外部编号=f"d{i}", 经营范围=name) for i, name in enumerate(dangerous)]
    )
    with app.app_context():
        import_file(db.session, path)
    for suffix in (".csv", ".xlsx"):
        _check_export(app, tmp_path / f"out{suffix}", suffix, dangerous)


def _check_export(app, out, suffix, dangerous):
    with app.app_context():
        assert export_enterprises(db.session, out) == 4
        if suffix == ".csv":
            with open(out, encoding="utf-8-sig", newline="") as fh:
                exported = list(csv.DictReader(fh))
            names = [r["企业名称"] for r in exported]
        else:
            sheet = load_workbook(out).active
            header = [c.value for c in next(sheet.iter_rows(max_row=1))]
            assert all(cell.data_type != "f" for r in sheet.iter_rows() for cell in r)
            names = [r[header.index("企业名称")] for r in sheet.iter_rows(min_row=2, values_only=True)]
        assert sorted(names) == sorted("'" + n for n in dangerous)
        # Re-importing the export restores the original text: nothing changes.
        again = import_file(db.session, out)
        assert again.unchanged == 4 and again.inserted == 0


def test_cli_import_json_contract_report_and_stats(app, runner, tmp_path):
    path = write_csv(
        tmp_path / "cli.csv",
        [
            row(企业名称="甲公司", 外部编号="c1"),
            row(企业名称="乙公司", 外部编号="c2", 省份="广东", 城市="深圳"),
            row(企业名称="", 外部编号="c3"),
        ],
    )
    report = tmp_path / "r.csv"
    result = runner.invoke(args=["firms", "import", str(path), "--json", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "duplicates_merged": 0,
    }
    assert report.exists()
    again = runner.invoke(args=["firms", "import", str(path), "--json"])
    assert json.loads(again.stdout)["unchanged"] == 2
    stats = runner.invoke(args=["firms", "stats", "--json"])
    assert json.loads(stats.stdout) == {
        "total": 2,
        "by_province": {"广东省": 1, "山东省": 1},
        "by_status": {"存续": 2},
        "synthetic": 2,
        "demo": 0,
    }


def test_cli_import_mapping_and_unreadable_file(runner, tmp_path):
    path = tmp_path / "mapped.csv"
    path.write_text("单位,编号X\n甲公司,m1\n", encoding="utf-8")
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"单位": "企业名称", "编号X": "外部编号"}, ensure_ascii=False), encoding="utf-8")
    ok = runner.invoke(args=["firms", "import", str(path), "--json", "--mapping", str(mapping)])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["inserted"] == 1
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"\x00\x01garbage")
    failed = runner.invoke(args=["firms", "import", str(bad), "--json"])
    assert failed.exit_code != 0 and "无法读取" in failed.output


def test_cli_export_and_demo_synth(app, runner, tmp_path):
    out = tmp_path / "synth.csv"
    assert runner.invoke(args=["demo", "synth", "--n", "30", "--seed", "7", "--out", str(out)]).exit_code == 0
    assert runner.invoke(args=["firms", "import", str(out)]).exit_code == 0
    exported = tmp_path / "all.xlsx"
    result = runner.invoke(args=["firms", "export", str(exported)])
    assert result.exit_code == 0 and exported.exists()
    stats = json.loads(runner.invoke(args=["firms", "stats", "--json"]).stdout)
    assert stats["total"] == 30 and stats["synthetic"] == 30


def test_synthetic_data_is_deterministic_labelled_and_uses_chain_links(tmp_path):
    chain_dir = tmp_path / "chains"
    chain_dir.mkdir()
    (chain_dir / "t.yaml").write_text(
        "id: t\nname: 测试链\nlinks:\n  - id: t-a\n    name: 顶层\n    children:\n"
        "      - id: t-leaf\n        name: 叶子环节\n        keywords: [独特关键词]\n        products: [独特产品]\n"
        '        industry_codes: ["C3841"]\n',
        encoding="utf-8",
    )
    rows = synth.generate(20, seed=5, chain_dir=chain_dir)
    assert rows == synth.generate(20, seed=5, chain_dir=chain_dir)
    assert rows != synth.generate(20, seed=6, chain_dir=chain_dir)
    for r in rows:
        assert (
            r["数据说明"].startswith("合成数据") and r["企业名称"].endswith("（合成）") and r["统一社会信用代码"] == ""
        )
        assert "独特关键词" in r["经营范围"] and r["国标行业代码"] == "C3841" and list(r) == synth.CSV_HEADER
    fallback = synth.generate(5, seed=1, chain_dir=tmp_path / "absent")
    assert len(fallback) == 5 and all(r["所属行业"] for r in fallback)


def test_init_step_loads_demo_firms_idempotently(app, tmp_path, monkeypatch):
    from webapp.cli import firms

    demo = write_csv(
        tmp_path / "demo_firms.csv",
        [row(企业名称="演示甲公司", 外部编号="demo-a", 数据说明="演示数据：依据公开资料整理")],
    )
    monkeypatch.setattr(firms, "DEMO_FIRMS_CSV", demo)
    with app.app_context():
        firms.load_demo_firms(app)
        before = snapshot()
        firms.load_demo_firms(app)
        assert snapshot() == before
        firm = by_name("演示甲公司")
        assert firm.is_demo and not firm.is_synthetic


def test_contacts_of_a_registry_export_are_kept_changed_and_exported(app, tmp_path):
    """A 企查查-style export: its 法定代表人 / 电话 / 邮箱 / 网址 columns land on the firm, a later export's changed phone is
    recorded as a change, and the platform's own export carries them back unchanged."""
    header = ["企业名称", "登记状态", "法定代表人", "注册资本", "成立日期", "所属省份", "所属城市", "电话", "更多电话"]
    header += ["邮箱", "统一社会信用代码", "企业(机构)类型", "企业地址", "网址", "经营范围"]
    first = [
        "青岛甲装备有限公司",
        "存续（在营、开业、在册）",
        "张三",
        "5000万元人民币",
        "2015-03-02",
        "山东省",
        "青岛市",
    ]
    first += ["0532-88886666", "0532-88886667", "info@example.com", CODE_A, "有限责任公司", "青岛市黄岛区某路1号"]
    first += ["www.example.com", "船舶配套设备的研发、生产"]

    def write(path, values):
        with open(path, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([header, values])
        return path

    with app.app_context():
        assert import_file(db.session, write(tmp_path / "qcc.csv", first)).inserted == 1
        firm = by_name("青岛甲装备有限公司")
        contacts = (firm.legal_representative, firm.phone, firm.email, firm.website, firm.address)
        assert contacts == ("张三", "0532-88886666", "info@example.com", "www.example.com", "青岛市黄岛区某路1号")
        assert import_file(db.session, tmp_path / "qcc.csv").unchanged == 1

        later = list(first)
        later[header.index("电话")] = "0532-80001234"
        assert import_file(db.session, write(tmp_path / "qcc-2.csv", later)).updated == 1
        change = db.session.scalars(select(EnterpriseChange).where(EnterpriseChange.field == "phone")).one()
        assert (change.old_value, change.new_value) == ("0532-88886666", "0532-80001234")

        out = tmp_path / "export.csv"
        export_enterprises(db.session, out)
        with open(out, encoding="utf-8-sig", newline="") as fh:
            exported = next(csv.DictReader(fh))
        assert (exported["法定代表人"], exported["电话"], exported["邮箱"], exported["网址"]) == (
            "张三",
            "0532-80001234",
            "info@example.com",
            "www.example.com",
        )
        assert import_file(db.session, out).unchanged == 1


def test_the_import_template_filled_in_imports_every_column(app, tmp_path):
    """The 企业导入 page's template: staff fill in its first sheet and upload it as is; every column lands on the firm,
    and its 字段说明 sheet explains each column once."""
    from chains.enterprises.exporter import EXPORT_HEADER
    from chains.enterprises.import_template import NOTES_SHEET, TEMPLATE_SHEET, write_import_template
    from chains.enterprises.readers import read_xlsx

    path = tmp_path / "模板.xlsx"
    write_import_template(path)
    workbook = load_workbook(path)
    assert workbook.sheetnames == [TEMPLATE_SHEET, NOTES_SHEET]
    sheet = workbook[TEMPLATE_SHEET]
    assert [c.value for c in sheet[1]] == EXPORT_HEADER and sheet.max_row == 1  # no sample row to import by mistake
    notes = list(workbook[NOTES_SHEET].iter_rows(min_row=2, values_only=True))
    assert [n[0] for n in notes] == EXPORT_HEADER and all(n[2] for n in notes)
    assert [n[0] for n in notes if n[1] == "必填"] == ["企业名称"]
    assert "法人代表" in dict((n[0], n[3]) for n in notes)["法定代表人"]  # the other spellings a registry export uses

    filled = {
        "外部编号": "ext-t1",
        "企业名称": "青岛甲装备有限公司",
        "统一社会信用代码": CODE_A,
        "登记状态": "存续",
        "成立日期": "2015/3/2",
        "注册资本": "1.2亿元",
        "省份": "山东省",
        "城市": "青岛市",
        "区县": "黄岛区",
        "注册地址": "青岛市黄岛区某路1号",
        "法定代表人": "张三",
        "电话": "0532-88886666",
        "邮箱": "info@example.com",
        "网址": "www.example.com",
        "国标行业代码": "3734",
        "所属行业": "船舶改装",
        "经营范围": "船舶配套设备的研发、生产",
        "主营产品": "甲板机械",
        "企业标签": "高新技术企业；专精特新",
        "参保人数": "120",
        "营业收入": "12000",
        "曾用名": "青岛甲机械有限公司、青岛甲船舶配件厂",
        "国家": "",
        "数据说明": "合成数据：模板测试",
    }
    sheet.append([filled[h] for h in EXPORT_HEADER])
    workbook.save(path)
    assert read_xlsx(path).unmapped == []  # every template column is read
    with app.app_context():
        assert import_file(db.session, path).inserted == 1
        firm = by_name("青岛甲装备有限公司")
        assert (firm.external_id, firm.credit_code, firm.status) == ("ext-t1", CODE_A, "存续")
        assert (firm.founded_on, firm.capital_wan_cny) == (date(2015, 3, 2), 12000)
        assert (firm.province, firm.city, firm.district, firm.address) == (
            "山东省",
            "青岛市",
            "黄岛区",
            filled["注册地址"],
        )
        assert (firm.legal_representative, firm.phone, firm.email, firm.website) == (
            "张三",
            "0532-88886666",
            "info@example.com",
            "www.example.com",
        )
        assert (firm.industry_section, firm.industry_class, firm.industry_name) == ("C", "3734", "船舶改装")
        assert (firm.business_scope, firm.main_products) == (filled["经营范围"], "甲板机械")
        assert firm.tag_names == ["专精特新", "高新技术企业"]
        assert (firm.employees, firm.revenue_wan) == (120, 12000)
        assert firm.former_names == ["青岛甲机械有限公司", "青岛甲船舶配件厂"]
        assert (firm.country, firm.data_note) == ("中国", "合成数据：模板测试")
