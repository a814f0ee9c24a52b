"""Cluster pages: dashboard rules, chain map tiles, link panel fragment, lists curation and export, placement,
access control, CSRF and escaping."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from chains.cluster_models import ClusterIndicator, LinkAssignment
from chains.evaluation import ALTERNATIVE_MET_NOTE, evaluate_cluster
from chains.gaps import analyze_chain
from chains.list_models import ListChange, ListEntry
from tests.worlds.clusters import (
    CHAIN,
    CLUSTER_A,
    CLUSTER_B,
    XSS_NAME,
    XSS_NOTE,
    assert_htmx_indicators,
    build_app_world,
)
from webapp.extensions import db

A = f"/clusters/{CLUSTER_A}"
B = f"/clusters/{CLUSTER_B}"


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def _tile_class(html: str, link_key: str) -> str:
    match = re.search(rf'<div class="([^"]*)" id="tile-{link_key}"', html)
    assert match, f"no tile for {link_key}"
    return match.group(1)


def test_cluster_list_shows_only_assigned_clusters(auth, world, client):
    auth.login_as("manager", clusters=(CLUSTER_A,))
    html = client.get("/clusters/").get_data(as_text=True)
    assert "甲集聚区" in html and "乙集聚区" not in html
    assert "集聚区" in html and "招商线索" in html  # nav entries


def test_dashboard_shows_rule_values_and_pass_fail(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    response = client.get(A)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    with app.app_context():
        evaluation = evaluate_cluster(db.session, CLUSTER_A)
        gap = analyze_chain(db.session, CLUSTER_A, CHAIN)
    passed = [r for r in evaluation.rules if r.passed is True]
    failed = [r for r in evaluation.rules if r.passed is False]
    assert passed and failed  # the fixture has both: two 装备 clusters in one city exceed the city limit
    for rule in evaluation.rules:
        assert rule.name in html
        if rule.value is not None:
            assert f"{rule.value:,.2f}" in html, rule.name
    assert html.count('class="rule-row rule-pass"') == len(passed)
    assert html.count('class="rule-row rule-fail"') == len(failed)
    assert "<strong>未达标</strong>" in html and "<strong>达标</strong>" in html
    chart = json.loads(unescape(re.search(r'data-chart="([^"]+)"', html).group(1)))
    numeric = [r for r in evaluation.rules if r.value is not None and r.threshold]
    assert chart["labels"] == [r.name for r in numeric]
    assert chart["datasets"][0]["data"] == [round(r.value / r.threshold * 100, 1) for r in numeric]
    assert "chart.umd.min.js" in html and "<script>" not in html
    # The chain row: status counts and 本地配套率.
    for status, count in gap.rollup.counts.items():
        assert f'<td class="count-{status}">{count}</td>' in html
    assert f"{gap.rollup.local_rate * 100:.1f}%" in html


def test_a_failed_alternative_says_it_does_not_decide_the_verdict(app, auth, world, client):
    with app.app_context():
        indicator = db.session.scalars(select(ClusterIndicator).where(ClusterIndicator.cluster_id == CLUSTER_A)).one()
        indicator.revenue = 850000  # 4,250 元/m² of revenue, under 4,500, while both tax measures pass
        db.session.commit()
    auth.login_as("staff", clusters=(CLUSTER_A,))
    html = client.get(A).get_data(as_text=True)
    row = html[html.index("单位面积营业收入") :]
    row = row[: row.index("</tr>")]
    assert "<strong>未达标</strong>" in row and ALTERNATIVE_MET_NOTE in row
    assert html.count(ALTERNATIVE_MET_NOTE) == 1  # the passing alternatives carry no note


def test_chain_map_has_three_stage_columns_and_status_tiles(app, auth, world, client):
    auth.login_as("manager", clusters=(CLUSTER_A,))
    response = client.get(f"{A}/chains/{CHAIN}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.findall(r'<section class="stage-column" data-stage="([^"]+)"', html) == ["上游", "中游", "下游"]
    with app.app_context():
        gap = analyze_chain(db.session, CLUSTER_A, CHAIN)
    for link in gap.links:
        assert f"status-{link.status}" in _tile_class(html, link.link_id).split()
    assert "status-优势" in _tile_class(html, "tc-parts").split()  # three confirmed local firms
    assert "status-空白" in _tile_class(html, "tc-control").split()  # none
    # Sub-links are inside an expandable <details>; supply edges are listed on the tiles.
    assert re.search(r"<details class=\"sublinks\">\s*<summary>2 个子环节</summary>", html)
    assert '供给→ <a href="#tile-tc-parts">核心部件</a>' in html
    assert '← 来自 <a href="#tile-tc-materials">基础材料</a>' in html
    assert "图例" in html
    # Each tile opens the panel through htmx and still works as a plain link.
    panel_url = f"{A}/chains/{CHAIN}/links/tc-control"
    assert f'href="{panel_url}" hx-get="{panel_url}" hx-target="#link-panel" hx-push-url="true" hx-indicator=' in html
    assert assert_htmx_indicators(html) == len(gap.links)


def test_link_panel_is_a_fragment_for_htmx_and_a_full_page_otherwise(app, auth, world, client):
    from webapp.services.match import wait_for_background

    auth.login_as("staff", clusters=(CLUSTER_A,))
    url = f"{A}/chains/{CHAIN}/links/tc-parts"
    fragment = client.get(url, headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "<html" not in body and 'class="stage-column"' not in body
    assert "核心部件" in body and "本地部件企业0" in body and "已确认" in body and "骨干" in body
    assert "核心部件产品" in body and "核心部件关键词" in body
    assert "HX-Request" in fragment.headers.get("Vary", "")
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    assert html.count('class="stage-column"') == 3
    assert '<aside id="link-panel"' in html and "本地部件企业0" in html
    assert "selected" in _tile_class(html, "tc-parts").split()
    # A history-restore request (back button) needs the full page.
    restore = client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)
    assert client.get(f"{A}/chains/{CHAIN}/links/no-such-link", headers={"HX-Request": "true"}).status_code == 404
    wait_for_background(app)  # the panel started the index build; let it end before teardown


def test_link_panel_ranks_candidates_with_a_lead_button(app, auth, world, client):
    from webapp.services.match import wait_for_background

    auth.login_as("staff", clusters=(CLUSTER_A,))
    body = client.get(f"{A}/chains/{CHAIN}/links/tc-parts", headers={"HX-Request": "true"}).get_data(as_text=True)
    wait_for_background(app)  # the first request starts the index build; let it end before teardown
    candidates = body[body.index('<ol class="candidates">') :]
    # The script-named firm works on 核心部件 and is not local: a candidate, shown escaped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in candidates and XSS_NAME not in body
    assert "本地部件企业0" not in candidates  # local roster firms are not candidates
    assert f'name="enterprise_id" value="{world["candidate"]}"' in candidates
    assert 'hx-post="/leads/create"' in candidates
    with app.test_request_context():
        from flask import url_for

        full_list = url_for("candidates.for_link", cluster_id=CLUSTER_A, link_key="tc-parts")
    assert f'href="{full_list}">查看全部候选企业</a>' in candidates
    created = auth.post(
        "/leads/create",
        {"cluster_id": CLUSTER_A, "chain_id": CHAIN, "link_key": "tc-parts", "enterprise_id": world["candidate"]},
        headers={"HX-Request": "true"},
    )
    assert created.status_code == 201 and "已加入招商线索" in created.get_data(as_text=True)
    with app.app_context():
        targets = db.session.scalars(select(ListEntry).where(ListEntry.list_type == "targets")).all()
        assert [(t.cluster_id, t.enterprise_id, t.link_key) for t in targets] == [
            (CLUSTER_A, world["candidate"], "tc-parts")
        ]
    # The target entry does not stop the derived lists from being built on the first visit.
    html = client.get(f"{A}/chains/{CHAIN}/lists").get_data(as_text=True)
    assert "本地部件企业0" in html and '招商目标企业清单 <span class="badge">1</span>' in html


def test_link_panel_says_when_candidates_are_keyword_matches_even_if_there_are_none(app, auth, world, client):
    from webapp.services.match import wait_for_background
    from webapp.services.match.fallback import MESSAGE_FALLBACK

    auth.login_as("staff", clusters=(CLUSTER_A,))
    # No firm's text names 防腐涂层, so the keyword fallback (the index is not loaded yet) finds nothing.
    body = client.get(f"{A}/chains/{CHAIN}/links/tc-coating", headers={"HX-Request": "true"}).get_data(as_text=True)
    wait_for_background(app)
    assert MESSAGE_FALLBACK in body and "暂无候选企业" in body


def _leader_entries(app) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(ListEntry.id)
                .where(ListEntry.cluster_id == CLUSTER_A, ListEntry.list_type == "leaders")
                .order_by(ListEntry.id)
            )
        )


def test_lists_curation_records_history(app, auth, world, client):
    user = auth.login_as("staff", clusters=(CLUSTER_A,))
    page = client.get(f"{A}/chains/{CHAIN}/lists")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "龙头骨干企业清单" in html and "招商目标企业清单" in html
    entries = _leader_entries(app)
    assert len(entries) == 3 and "本地部件企业1" in html
    assert assert_htmx_indicators(html) == 3 * 3  # note, pin, remove per row
    base = f"{A}/chains/{CHAIN}/lists/entries"
    pinned = auth.post(f"{base}/{entries[1]}/pin", headers={"HX-Request": "true"})
    row = pinned.get_data(as_text=True)
    assert pinned.status_code == 200 and row.lstrip().startswith(f'<tr id="entry-{entries[1]}"')
    assert "pinned" in row and "取消置顶" in row
    assert auth.post(f"{base}/{entries[2]}/remove").status_code == 302
    assert auth.post(f"{base}/{entries[0]}/note", {"note": "重点走访"}).status_code == 302
    with app.app_context():
        changes = db.session.scalars(select(ListChange).order_by(ListChange.id)).all()
        assert [(c.entry_id, c.action) for c in changes] == [
            (entries[1], "pin"),
            (entries[2], "remove"),
            (entries[0], "note"),
        ]
        assert {c.username for c in changes} == {user}
    html = client.get(f"{A}/chains/{CHAIN}/lists").get_data(as_text=True)
    assert html.index(f'id="entry-{entries[1]}"') < html.index(f'id="entry-{entries[0]}"')  # pinned first
    assert f'id="entry-{entries[2]}"' not in html  # removed
    restored = auth.post(f"{base}/{entries[2]}/restore", headers={"HX-Request": "true"})
    assert "removed" not in restored.get_data(as_text=True).split("\n")[1]
    history = client.get(f"{A}/chains/{CHAIN}/lists/leaders/history").get_data(as_text=True)
    for word in ("置顶", "移除", "恢复", "重点走访", user):
        assert word in history


def test_list_entries_open_the_firm_or_the_link_they_name(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    html = client.get(f"{A}/chains/{CHAIN}/lists").get_data(as_text=True)
    with app.app_context():
        firm_id = db.session.get(ListEntry, _leader_entries(app)[0]).enterprise_id
        weak = db.session.scalars(
            select(ListEntry).where(ListEntry.cluster_id == CLUSTER_A, ListEntry.list_type == "weak_links")
        ).first()
    row = html[html.index(f'id="entry-{_leader_entries(app)[0]}"') :].split("</tr>")[0]
    assert f'href="/firms/{firm_id}"' in row and client.get(f"/firms/{firm_id}").status_code == 200
    weak_html = client.get(f"{A}/chains/{CHAIN}/lists", query_string={"list": "weak_links"}).get_data(as_text=True)
    row = weak_html[weak_html.index(f'id="entry-{weak.id}"') :].split("</tr>")[0]
    link_url = f"{A}/chains/{CHAIN}/links/{weak.link_key}"
    assert f'href="{link_url}"' in row and f'data-link="{weak.link_key}"' in client.get(link_url).get_data(as_text=True)


def test_local_firms_open_their_pages_from_panel_placement_and_roster(app, auth, world, client):
    auth.login_as("admin")
    local, unplaced = world["local"][0], world["unplaced"]
    panel = client.get(f"{A}/chains/{CHAIN}/links/tc-parts", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'<a href="/firms/{local}">本地部件企业0</a>' in panel
    placement = client.get(f"{A}/placement").get_data(as_text=True)
    assert f'<a href="/firms/{unplaced}">待归位企业</a>' in placement
    roster = client.get(f"{A}/edit").get_data(as_text=True)
    roster = roster[roster.index('id="roster"') :]
    assert f'<a href="/firms/{local}">本地部件企业0</a>' in roster and f'<a href="/firms/{unplaced}">' in roster


def test_list_exports_read_back(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    client.get(f"{A}/chains/{CHAIN}/lists")
    entry = _leader_entries(app)[0]
    auth.post(f"{A}/chains/{CHAIN}/lists/entries/{entry}/note", {"note": "=cmd|' /C calc'!A0"})
    response = client.get(f"{A}/chains/{CHAIN}/lists/export.xlsx")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(response.data))
    assert "龙头骨干企业清单" in workbook.sheetnames and len(workbook.sheetnames) == 7
    rows = list(workbook["龙头骨干企业清单"].iter_rows(values_only=True))
    assert rows[0][:2] == ("序号", "企业名称") and len(rows) == 4
    assert {r[1] for r in rows[1:]} == {f"本地部件企业{i}" for i in range(3)}
    assert all(not str(r[-1] or "").startswith("=") for r in rows)
    one = load_workbook(io.BytesIO(client.get(f"{A}/chains/{CHAIN}/lists/export.xlsx?list=weak_links").data))
    assert one.sheetnames == ["补短板突破环节清单"]
    csv_response = client.get(f"{A}/chains/{CHAIN}/lists/leaders/export.csv")
    text = csv_response.data.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][1] == "企业名称" and len(table) == 4


def test_placement_confirm_and_correct_are_recorded(app, auth, world, client):
    user = auth.login_as("manager", clusters=(CLUSTER_A,))
    with app.app_context():
        first = LinkAssignment(
            cluster_id=CLUSTER_A,
            enterprise_id=world["unplaced"],
            chain_id=CHAIN,
            link_key="tc-control",
            source="suggested",
            confirmed=False,
            confidence=0.82,
        )
        second = LinkAssignment(
            cluster_id=CLUSTER_A,
            enterprise_id=world["candidate"],
            chain_id=CHAIN,
            link_key="tc-service",
            source="suggested",
            confirmed=False,
            confidence=0.41,
        )
        db.session.add_all([first, second])
        db.session.commit()
        first_id, second_id = first.id, second.id
    html = client.get(f"{A}/placement").get_data(as_text=True)
    assert "待确认的归位建议（2）" in html and "0.82" in html
    assert XSS_NAME not in html and "&lt;script&gt;" in html
    response = auth.post(
        f"{A}/placement/confirm",
        {"confirm": [str(first_id)], f"link_{second_id}": "tc-alloy", f"link_{first_id}": ""},
        headers={"HX-Request": "true"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "已确认 2 条归位（其中修正 1 条）" in body and "<html" not in body
    with app.app_context():
        a1, a2 = db.session.get(LinkAssignment, first_id), db.session.get(LinkAssignment, second_id)
        assert a1.confirmed and a1.link_key == "tc-control" and a1.created_by_id is not None
        assert a2.confirmed and a2.link_key == "tc-alloy" and a2.source == "manual"
        from webapp.services.audit.models import AuditEntry

        actions = {(e.action, e.username) for e in db.session.scalars(select(AuditEntry))}
        assert {("assignment.confirm", user), ("assignment.correct", user)} <= actions
    # Confirmed firms now count in the gap analysis shown on the map.
    html = client.get(f"{A}/chains/{CHAIN}/links/tc-control").get_data(as_text=True)
    assert "status-空白" not in _tile_class(html, "tc-control").split()
    from webapp.services.match import wait_for_background

    wait_for_background(app)  # the panel started the index build; let it end before teardown


def test_placement_run_suggests_links_for_unplaced_firms(app, auth, world, client):
    from webapp.clusters import placement_views

    auth.login_as("manager", clusters=(CLUSTER_A,))
    assert "未归位的本地企业（1）" in client.get(f"{A}/placement").get_data(as_text=True)
    response = auth.post(f"{A}/placement/run", headers={"HX-Request": "true"})
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    placement_views.wait_for_runs(120)
    from webapp.services import jobs

    with app.app_context():
        job = jobs.get(db.session, jobs.KIND_PLACEMENT, CLUSTER_A)
        assert job.status == "done", job.message
    body = client.get(f"{A}/placement/status", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'hx-trigger="every' not in body  # polling stops once the run is over
    with app.app_context():
        rows = db.session.scalars(select(LinkAssignment).where(LinkAssignment.enterprise_id == world["unplaced"])).all()
        assert all(not r.confirmed and r.source == "suggested" for r in rows)
        suggested = {r.link_key for r in rows}
    if suggested:  # the matcher may also decline to place a firm it cannot place confidently
        assert f"待确认的归位建议（{len(rows)}）" in body


def test_placement_correction_to_a_foreign_link_is_refused(app, auth, world):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    with app.app_context():
        a = LinkAssignment(
            cluster_id=CLUSTER_A,
            enterprise_id=world["unplaced"],
            chain_id=CHAIN,
            link_key="tc-control",
            source="suggested",
            confirmed=False,
            confidence=0.5,
        )
        db.session.add(a)
        db.session.commit()
        aid = a.id
    response = auth.post(f"{A}/placement/confirm", {f"link_{aid}": "other-chain-link"}, headers={"HX-Request": "true"})
    assert response.status_code == 400 and "所选环节不属于本集聚区的产业链" in response.get_data(as_text=True)
    with app.app_context():
        assert not db.session.get(LinkAssignment, aid).confirmed


CLUSTER_B_GETS = [
    B,
    f"{B}/chains/{CHAIN}",
    f"{B}/chains/{CHAIN}/links/tc-service",
    f"{B}/chains/{CHAIN}/lists",
    f"{B}/chains/{CHAIN}/lists/leaders/history",
    f"{B}/chains/{CHAIN}/lists/export.xlsx",
    f"{B}/chains/{CHAIN}/lists/leaders/export.csv",
    f"{B}/placement",
]


def test_manager_of_cluster_a_gets_403_on_cluster_b(auth, world, client):
    auth.login_as("manager", clusters=(CLUSTER_A,))
    for path in CLUSTER_B_GETS:
        assert client.get(path).status_code == 403, path
    assert auth.post(f"{B}/placement/confirm", {}).status_code == 403
    assert auth.post(f"{B}/chains/{CHAIN}/lists/refresh", {}).status_code == 403
    assert client.get(A).status_code == 200


def test_firm_role_gets_403_on_cluster_pages(auth, world, client):
    auth.login_as("firm")
    for path in ["/clusters/", A] + [p.replace(CLUSTER_B, CLUSTER_A) for p in CLUSTER_B_GETS]:
        assert client.get(path).status_code == 403, path
    assert auth.post(f"{A}/placement/confirm", {}).status_code == 403


def test_post_without_csrf_token_is_rejected(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    client.get(f"{A}/chains/{CHAIN}/lists")
    entry = _leader_entries(app)[0]
    response = client.post(f"{A}/chains/{CHAIN}/lists/entries/{entry}/pin", headers={"HX-Request": "true"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    with app.app_context():
        assert not db.session.get(ListEntry, entry).pinned


def test_script_firm_name_and_note_render_escaped(app, auth, world, client):
    auth.login_as("staff", clusters=(CLUSTER_A,))
    client.get(f"{A}/chains/{CHAIN}/lists")
    entry = _leader_entries(app)[0]
    row = auth.post(
        f"{A}/chains/{CHAIN}/lists/entries/{entry}/note", {"note": XSS_NOTE}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "<img src=x" not in row and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in row
    # A lead on the script-named firm shows on the dashboard's activity and in the targets list.
    auth.post(
        "/leads/create",
        {"cluster_id": CLUSTER_A, "chain_id": CHAIN, "link_key": "tc-control", "enterprise_id": world["candidate"]},
    )
    for path in (A, f"{A}/chains/{CHAIN}/lists?list=targets", f"{A}/chains/{CHAIN}/lists"):
        html = client.get(path).get_data(as_text=True)
        assert XSS_NAME not in html and "<img src=x" not in html, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(A).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"{A}/chains/{CHAIN}/lists?list=targets").get_data(
        as_text=True
    )
