"""N lists: derivation, curation with history, refresh keeping curation, targets, export to xlsx/csv."""

from __future__ import annotations

import csv

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from chains import list_export, lists
from chains.chainmap_io import import_chain_file
from chains.cluster_io import import_cluster_file
from chains.cluster_models import LinkAssignment
from chains.enterprise_models import Enterprise
from chains.excel import safe_cell, write_xlsx
from chains.list_models import ListChange, ListEntry
from tests.worlds.chains import CHAIN_YAML, cluster_yaml, make_firms, write
from webapp.auth.models import User
from webapp.extensions import db

ROSTER = """\
- {firm: demo-f1, role: 龙头, links: [tc-mid-a]}
- {firm: demo-f2, role: 骨干}
- {firm: demo-f3, role: 配套, links: [tc-up-a]}
- {firm: demo-f4, role: 配套, links: [tc-mid-b]}
- {firm: demo-f5, role: 配套, links: [tc-mid-b]}
- {firm: demo-f6, role: 配套}
"""
PROJECTS = """\
projects:
  - {name: 电芯扩产项目, firm: demo-f1, link: tc-mid-a, investment: 120000, status: 在建, year: 2024, note: 示意}
  - {name: 园区配套项目, investment: 3000, status: 拟建}
"""


@pytest.fixture
def cluster(app, tmp_path):
    with app.app_context():
        import_chain_file(db.session, write(tmp_path, "tc.yaml", CHAIN_YAML))
        make_firms(db.session, 8)
        import_cluster_file(db.session, write(tmp_path, "tcl.yaml", cluster_yaml(roster=ROSTER, extra=PROJECTS)))
        lists.refresh_lists(db.session, "tcl", "tc")
    return app


def names(list_type: str) -> list[str]:
    return [e.data["name"] for e in lists.get_list(db.session, "tcl", "tc", list_type)]


def ent(external_id: str) -> Enterprise:
    return db.session.scalars(select(Enterprise).where(Enterprise.external_id == external_id)).one()


def test_lists_are_derived(cluster):
    with cluster.app_context():
        # f2 (骨干) is placed nowhere yet, so it shows; f6 (配套, unplaced) is no 主要配套企业.
        assert names(lists.LIST_LEADERS) == ["测试企业1", "测试企业2"]
        leaders = lists.get_list(db.session, "tcl", "tc", lists.LIST_LEADERS)
        assert leaders[0].data["role"] == "龙头" and leaders[0].data["links"] == "电芯"
        assert names(lists.LIST_SUPPLIERS) == ["测试企业3", "测试企业4", "测试企业5"]
        # leaves: up-a 1 firm (薄弱), up-b 0, mid-a 1 龙头 (优势), mid-b 2 (一般), mid-c 0, down 0
        assert names(lists.LIST_WEAK_LINKS) == ["正极材料", "负极材料", "电池包", "整车应用"]
        assert names(lists.LIST_STRONG_LINKS) == ["核心部件", "电芯"]
        key_tech = lists.get_list(db.session, "tcl", "tc", lists.LIST_KEY_TECH)
        assert [(e.data["name"], e.data["covered"], e.data["key_tech_note"]) for e in key_tech] == [
            ("电芯", "是", "高镍电芯量产工艺")
        ]
        projects = lists.get_list(db.session, "tcl", "tc", lists.LIST_PROJECTS)
        assert [(p.data["name"], p.data["link"], p.data["investment_wan"]) for p in projects] == [
            ("电芯扩产项目", "电芯", 120000),
            ("园区配套项目", "", 3000),
        ]
        assert names(lists.LIST_TARGETS) == []


def test_curation_is_recorded_and_survives_refresh(cluster):
    with cluster.app_context():
        user = User(username="staff1", role="staff", password_hash="x")
        db.session.add(user)
        db.session.commit()
        weak = {e.data["name"]: e for e in lists.get_list(db.session, "tcl", "tc", lists.LIST_WEAK_LINKS)}
        lists.pin(db.session, weak["整车应用"].id, user)
        lists.remove(db.session, weak["负极材料"].id, user)
        lists.set_note(db.session, weak["电池包"].id, "优先招引电池包企业", None)
        assert names(lists.LIST_WEAK_LINKS) == ["整车应用", "正极材料", "电池包"]  # pinned first, removed hidden

        changes = db.session.scalars(select(ListChange).order_by(ListChange.id)).all()
        assert [(c.action, c.username, c.user_id) for c in changes] == [
            ("pin", "staff1", user.id),
            ("remove", "staff1", user.id),
            ("note", None, None),
        ]
        assert changes[2].new_value == "优先招引电池包企业" and changes[0].changed_at is not None

        # Pinning again changes nothing and records nothing.
        lists.pin(db.session, weak["整车应用"].id, user)
        assert db.session.scalar(select(ListChange.id).order_by(ListChange.id.desc())) == changes[-1].id

        lists.refresh_lists(db.session, "tcl", "tc")
        entries = {
            e.data["name"]: e
            for e in lists.get_list(db.session, "tcl", "tc", lists.LIST_WEAK_LINKS, include_removed=True)
        }
        assert entries["整车应用"].pinned and entries["负极材料"].removed
        assert entries["电池包"].note == "优先招引电池包企业"
        assert names(lists.LIST_WEAK_LINKS) == ["整车应用", "正极材料", "电池包"]

        lists.restore(db.session, weak["负极材料"].id, user)
        lists.unpin(db.session, weak["整车应用"].id, user)
        assert names(lists.LIST_WEAK_LINKS) == ["正极材料", "负极材料", "电池包", "整车应用"]


def test_entries_that_stop_deriving_hide_and_come_back_with_curation(cluster):
    with cluster.app_context():
        weak = {e.data["name"]: e for e in lists.get_list(db.session, "tcl", "tc", lists.LIST_WEAK_LINKS)}
        lists.set_note(db.session, weak["电池包"].id, "重点")
        for i in (6, 7, 8):  # three firms on 电池包 → 优势
            db.session.add(
                LinkAssignment(cluster_id="tcl", enterprise_id=ent(f"demo-f{i}").id, chain_id="tc", link_key="tc-mid-c")
            )
        db.session.commit()
        lists.refresh_lists(db.session, "tcl", "tc")
        assert "电池包" not in names(lists.LIST_WEAK_LINKS)
        assert "电池包" in names(lists.LIST_STRONG_LINKS)
        db.session.execute(LinkAssignment.__table__.delete().where(LinkAssignment.link_key == "tc-mid-c"))
        db.session.commit()
        lists.refresh_lists(db.session, "tcl", "tc")
        back = {e.data["name"]: e for e in lists.get_list(db.session, "tcl", "tc", lists.LIST_WEAK_LINKS)}
        assert back["电池包"].note == "重点" and back["电池包"].id == weak["电池包"].id


def test_pinned_entry_stays_visible_when_it_stops_deriving(cluster):
    with cluster.app_context():
        strong = {e.data["name"]: e for e in lists.get_list(db.session, "tcl", "tc", lists.LIST_STRONG_LINKS)}
        lists.pin(db.session, strong["电芯"].id)
        db.session.execute(LinkAssignment.__table__.delete().where(LinkAssignment.link_key == "tc-mid-a"))
        db.session.commit()
        lists.refresh_lists(db.session, "tcl", "tc")
        shown = lists.get_list(db.session, "tcl", "tc", lists.LIST_STRONG_LINKS)
        assert [e.data["name"] for e in shown] == ["电芯"] and shown[0].derived is False


def test_add_target_is_idempotent_and_kept_by_refresh(cluster):
    with cluster.app_context():
        target = ent("demo-f7")
        entry = lists.add_target(db.session, "tcl", "tc", target.id, "招商员", link_key="tc-mid-c", note="已接洽")
        assert entry.source == "manual" and entry.data["link"] == "电池包" and entry.data["added_by"] == "招商员"
        again = lists.add_target(db.session, "tcl", "tc", target.id, None)
        assert again.id == entry.id
        lists.refresh_lists(db.session, "tcl", "tc")
        assert names(lists.LIST_TARGETS) == ["测试企业7"]
        lists.remove(db.session, entry.id)
        assert names(lists.LIST_TARGETS) == []
        lists.add_target(db.session, "tcl", "tc", target.id, None)  # re-adding restores it
        assert names(lists.LIST_TARGETS) == ["测试企业7"]
        actions = [c.action for c in db.session.get(ListEntry, entry.id).changes]
        assert actions == ["add", "remove", "restore"]
        with pytest.raises(KeyError):
            lists.add_target(db.session, "tcl", "nope", target.id, None)


def test_export_workbook_and_csv(cluster, tmp_path):
    with cluster.app_context():
        weak = lists.get_list(db.session, "tcl", "tc", lists.LIST_WEAK_LINKS)
        lists.set_note(db.session, weak[0].id, '=HYPERLINK("http://x")')
        written = list_export.export_lists(db.session, "tcl", "tc", str(tmp_path / "lists.xlsx"))
        wb = load_workbook(written[0])
        assert wb.sheetnames == list(lists.LIST_TYPES.values())
        ws = wb["补短板突破环节清单"]
        headers = [c.value for c in ws[1]]
        assert headers[:4] == ["序号", "环节", "阶段", "上级环节"] and headers[-2:] == ["置顶", "备注"]
        assert ws.cell(2, 2).value == "正极材料"
        note = ws.cell(2, len(headers))
        assert note.value == '\'=HYPERLINK("http://x")' and note.data_type == "s"
        leaders = wb["龙头骨干企业清单"]
        assert [c.value for c in leaders[2]][1] == "测试企业1"

        one = list_export.export_lists(db.session, "tcl", "tc", str(tmp_path / "weak.csv"), [lists.LIST_WEAK_LINKS])
        with open(one[0], encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0][1] == "环节" and rows[1][1] == "正极材料" and rows[1][-1].startswith("'=")
        many = list_export.export_lists(db.session, "tcl", "tc", str(tmp_path / "all.csv"))
        assert len(many) == len(lists.LIST_TYPES)
        with pytest.raises(ValueError):
            list_export.export_lists(db.session, "tcl", "tc", str(tmp_path / "x.pdf"))


@pytest.mark.parametrize(
    "value,expected",
    [
        ("=1+1", "'=1+1"),
        ("+86 532", "'+86 532"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=x", "'\t=x"),
        ("正常文本", "正常文本"),
        ("a=b", "a=b"),
        (-2, -2),
        (3.5, 3.5),
        (None, None),
        (["甲", "乙"], "甲、乙"),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_xlsx_cells_are_never_formulas(tmp_path):
    path = tmp_path / "t.xlsx"
    write_xlsx(
        path,
        [
            (
                "表[1]:测试/很长的名字超过三十一个字符的工作表标题啊啊啊啊啊啊啊啊",
                ["=名称", "值"],
                [["=cmd|' /C calc'!A0", -5], ["@x", 1.5]],
            )
        ],
    )
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    assert len(ws.title) <= 31 and "[" not in ws.title
    cells = [c for row in ws.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)
    assert ws["A1"].value == "'=名称" and ws["A2"].value.startswith("'=") and ws["B2"].value == -5
