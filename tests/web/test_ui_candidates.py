"""候选企业 page: full page vs htmx fragment, filters, pagination, add-to-target, feedback, access, escaping."""

from __future__ import annotations

import html as html_lib
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from chains.enterprise_models import Enterprise
from chains.feedback_models import CandidateFeedback
from tests.worlds.candidates import CLUSTER, OTHER_CLUSTER, STEEL, XSS_NAME, copy_seeded, seed
from webapp.candidates.export import EXPORT_HEADERS
from webapp.candidates.views import EXPORT_WAIT, PAGE_SIZE
from webapp.extensions import db
from webapp.leads.models import Lead
from webapp.services.audit.models import AuditEntry
from webapp.services.match import wait_for_background
from webapp.services.match.fallback import MESSAGE_FALLBACK

URL = f"/candidates/{CLUSTER}/{STEEL}"


@pytest.fixture
def world(app, world_copy):
    return copy_seeded(app, world_copy)


def _names(html: str) -> list[str]:
    return re.findall(r'class="cand-name" href="/firms/\d+">([^<]+)</a>', html)


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="cand-(\d+)"', html)]


def test_full_page_and_htmx_fragment(client, auth, world):
    auth.login_as("staff", clusters=(CLUSTER,))
    full = client.get(URL)
    assert full.status_code == 200
    page = full.get_data(as_text=True)
    assert "<html" in page and 'hx-get="' in page and 'hx-target="#candidate-results"' in page
    assert "江苏船板钢铁有限公司" in page
    assert "匹配模型：" in page
    fragment = client.get(URL, headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in body and '<form class="card filter-form"' not in body
    assert _ids(body) == _ids(page)  # the same ranked list in both
    # Each candidate explains itself.
    block = page[page.index(f'id="cand-{world["far"]}"') :]
    block = block[: block.index("</li>")]
    assert "<mark>" in block and "船用钢板" in block
    assert "各通道得分" in block and "最契合环节" in block and "最相似本地企业" in block
    assert "青岛本地船板厂" in block  # the most similar local firm is named
    # Defaults: roster firms and closed firms are left out.
    ids = _ids(page)
    assert world["far"] in ids
    assert world["local"] not in ids  # on the cluster's roster
    assert world["closed"] not in ids  # 注销
    # Unticking both defaults brings them back.
    args = {"f": "1"}
    ids = _ids(client.get(URL, query_string=args).get_data(as_text=True))
    assert world["local"] in ids and world["closed"] in ids


def test_filters_change_results(client, auth, world):
    auth.login_as("staff", clusters=(CLUSTER,))
    base = {"f": "1", "active_only": "1", "exclude_cluster_firms": "1"}
    shandong = _ids(
        client.get(URL, query_string={**base, "provinces": "山东省"}, headers={"HX-Request": "true"}).get_data(
            as_text=True
        )
    )
    assert set(shandong) == {world["province"], world["city"], world["weak_local"]}
    listed = _ids(client.get(URL, query_string={**base, "tags": "上市"}).get_data(as_text=True))
    assert listed == [world["far"]]
    capital = _ids(
        client.get(URL, query_string={**base, "capital_min": "5000", "capital_max": "10000"}).get_data(as_text=True)
    )
    assert capital == [world["province"]]
    outward = _ids(client.get(URL, query_string={**base, "exclude_cluster_province": "1"}).get_data(as_text=True))
    assert not {world["province"], world["city"], world["weak_local"]} & set(outward) and world["far"] in outward
    japan = _ids(client.get(URL, query_string={**base, "countries": "日本"}).get_data(as_text=True))
    assert japan == [world["foreign"]]
    # A bad value is reported in Chinese in place of the results.
    response = client.get(URL, query_string={"f": "1", "capital_min": "abc"}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "注册资本下限必须是数字" in response.get_data(as_text=True)


def test_results_while_the_index_loads_say_so_and_refresh_themselves(app, client, auth, world_copy):
    world_copy(seed)  # the saved index is not loaded into this process yet: the first request gets the fallback
    auth.login_as("staff", clusters=(CLUSTER,))
    # Even when the keyword fallback finds nothing, the page says why rather than blaming the filters.
    page = client.get(URL, query_string={"f": "1", "provinces": "西藏自治区"}).get_data(as_text=True)
    assert MESSAGE_FALLBACK in page and "索引完成后将自动刷新" in page and "可放宽筛选条件" not in page
    refresh = re.search(r'class="fallback-refresh" hx-get="([^"]+)" hx-trigger="load delay:\d+s"', page)
    assert refresh, "the fallback results do not fetch themselves again"
    assert "provinces=" in refresh.group(1)  # with the same filters
    wait_for_background(app)
    fragment = client.get(html_lib.unescape(refresh.group(1)), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment
    assert MESSAGE_FALLBACK not in fragment and "fallback-refresh" not in fragment  # the full matcher: polling ends
    assert "可放宽筛选条件" in fragment
    ranked = client.get(URL).get_data(as_text=True)
    assert _ids(ranked) and MESSAGE_FALLBACK not in ranked and "fallback-refresh" not in ranked


def test_no_export_while_the_index_loads(app, client, auth, world_copy):
    world_copy(seed)  # as above: the first request starts loading the index and gets the keyword fallback
    auth.login_as("staff", clusters=(CLUSTER,))
    early = client.get(f"{URL}/export.xlsx")  # keyword order, no match scores: not handed out as a list
    assert early.status_code == 503 and EXPORT_WAIT in early.get_data(as_text=True)
    wait_for_background(app)
    assert client.get(f"{URL}/export.xlsx").status_code == 200


def test_pagination(client, auth, world):
    auth.login_as("staff", clusters=(CLUSTER,))
    first = client.get(URL).get_data(as_text=True)
    assert len(_ids(first)) == PAGE_SIZE
    assert f'href="{URL}?page=2' in first and f'hx-get="{URL}?page=2' in first and "下一页" in first
    second = client.get(URL, query_string={"page": "2"}, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert _ids(second) and "<html" not in second
    assert f">{PAGE_SIZE + 1}<" in second  # ranks continue on page 2
    assert "上一页" in second and "下一页" not in second  # the pool ends on page 2


def test_pages_do_not_overlap(client, auth, world):
    auth.login_as("staff", clusters=(CLUSTER,))
    first = _ids(client.get(URL).get_data(as_text=True))
    second = _ids(client.get(URL, query_string={"page": "2"}).get_data(as_text=True))
    assert not set(first) & set(second)


def test_add_to_target_creates_the_lead_once(app, client, auth, world):
    auth.login_as("staff", clusters=(CLUSTER,))
    html = client.get(URL).get_data(as_text=True)
    assert "加入招商线索" in html
    form = {"cluster_id": CLUSTER, "chain_id": "mc", "link_key": STEEL, "enterprise_id": str(world["far"])}
    first = auth.post("/leads/create", form, headers={"HX-Request": "true"})
    assert first.status_code == 201 and "已加入" in first.get_data(as_text=True)
    again = auth.post("/leads/create", form, headers={"HX-Request": "true"})
    assert again.status_code == 200
    with app.app_context():
        count = db.session.scalar(
            select(func.count())
            .select_from(Lead)
            .where(Lead.enterprise_id == world["far"], Lead.cluster_id == CLUSTER, Lead.link_key == STEEL)
        )
    assert count == 1
    block = client.get(URL).get_data(as_text=True)
    block = block[block.index(f'id="cand-{world["far"]}"') :]
    assert "已加入" in block[: block.index("</li>")]


def test_a_leads_page_says_why_the_firm_fits_its_link_as_the_candidates_page_does(app, client, auth, world):
    auth.login_as("staff", clusters=(CLUSTER,))
    page = client.get(URL).get_data(as_text=True)
    card = page[page.index(f'id="cand-{world["far"]}"') :]
    score = re.search(r">匹配度 (\d+)<", card).group(1)
    form = {"cluster_id": CLUSTER, "chain_id": "mc", "link_key": STEEL, "enterprise_id": str(world["far"])}
    lead_url = auth.post("/leads/create", form).headers["Location"]
    lead_page = client.get(lead_url).get_data(as_text=True)
    fit = lead_page[lead_page.index('class="small lead-fit"') :].split("</p>")[0]
    assert f"匹配度 {score}" in fit and "证据" in fit and "船用钢板" in fit  # the link's own words, as on the card
    stage = auth.post(lead_url + "/stage", {"stage": "已接洽"}, headers={"HX-Request": "true"})
    assert stage.status_code == 200 and "lead-fit" not in stage.get_data(as_text=True)  # fragments skip it


def test_feedback_is_recorded(app, client, auth, world):
    auth.login_as("manager", clusters=(CLUSTER,))
    response = auth.post(
        f"{URL}/feedback", {"enterprise_id": str(world["far"]), "label": "not_relevant"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "不相关" in response.get_data(as_text=True)
    with app.app_context():
        rows = list(
            db.session.scalars(select(CandidateFeedback).where(CandidateFeedback.enterprise_id == world["far"]))
        )
    assert [(r.cluster_id, r.link_key, r.label) for r in rows] == [(CLUSTER, STEEL, "not_relevant")]
    bad = auth.post(
        f"{URL}/feedback", {"enterprise_id": str(world["far"]), "label": "maybe"}, headers={"HX-Request": "true"}
    )
    assert bad.status_code == 400 and "无效的反馈" in bad.get_data(as_text=True)
    # Without the CSRF token nothing is recorded.
    response = client.post(f"{URL}/feedback", data={"enterprise_id": str(world["far"]), "label": "relevant"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CandidateFeedback)) == 1


def test_export_is_the_pages_ranking_under_its_filters_with_what_staff_call_on(app, client, auth, world):
    """导出 Excel on the candidates page: the same firms in the same order as the page under the same filters, with
    their match score, reasons, registered contacts, the lead already open on the link and the synthetic-data mark."""
    with app.app_context():
        db.session.get(Enterprise, world["far"]).phone = "0513-88886666"
        db.session.commit()
    auth.login_as("staff", clusters=(CLUSTER,))
    assert (
        auth.post(
            "/leads/create",
            {"cluster_id": CLUSTER, "chain_id": "mc", "link_key": STEEL, "enterprise_id": str(world["far"])},
        ).status_code
        == 302
    )
    page = client.get(URL).get_data(as_text=True)
    export_url = html_lib.unescape(re.search(r'<a href="([^"]+/export\.xlsx[^"]*)" download>', page).group(1))
    book = load_workbook(io.BytesIO(client.get(export_url).get_data()))
    rows = list(book.active.iter_rows(values_only=True))
    assert list(rows[0]) == EXPORT_HEADERS
    column = {name: i for i, name in enumerate(EXPORT_HEADERS)}
    names = [r[column["企业名称"]] for r in rows[1:]]
    assert len(names) > PAGE_SIZE and names[:PAGE_SIZE] == [html_lib.unescape(n) for n in _names(page)]
    far = next(r for r in rows[1:] if r[column["企业名称"]] == "江苏船板钢铁有限公司")
    assert far[column["电话"]] == "0513-88886666" and far[column["本环节招商线索"]] == "候选"
    assert far[column["匹配度"]] > 0 and far[column["匹配理由"]] and far[column["数据标注"]] == "合成数据"

    filters = {"f": "1", "active_only": "1", "exclude_cluster_firms": "1", "provinces": "山东省"}
    fragment = client.get(URL, query_string=filters, headers={"HX-Request": "true"}).get_data(as_text=True)
    filtered_url = html_lib.unescape(re.search(r'<a href="([^"]+/export\.xlsx[^"]*)" download>', fragment).group(1))
    assert "provinces=" in filtered_url
    filtered = list(load_workbook(io.BytesIO(client.get(filtered_url).get_data())).active.iter_rows(values_only=True))
    assert {r[column["地区"]][:3] for r in filtered[1:]} == {"山东省"} and len(filtered) - 1 == len(_ids(fragment))
    bad = client.get(f"{URL}/export.xlsx", query_string={"f": "1", "capital_min": "abc"})
    assert bad.status_code == 400 and "注册资本下限必须是数字" in bad.get_data(as_text=True)
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "candidates.export")).all()
        assert len(entries) == 2
    auth.logout()
    auth.login_as("firm", enterprise_id=world["leader"])
    assert client.get(f"{URL}/export.xlsx").status_code == 403


def test_access_rules(client, auth, world):
    auth.login_as("staff", clusters=(OTHER_CLUSTER,))
    assert client.get(URL).status_code == 403
    assert auth.post(f"{URL}/feedback", {"enterprise_id": str(world["far"]), "label": "relevant"}).status_code == 403
    auth.logout()
    auth.login_as("firm", enterprise_id=world["leader"])
    assert client.get(URL).status_code == 403
    auth.logout()
    auth.login_as("admin")
    assert client.get(URL).status_code == 200
    assert client.get(f"/candidates/{CLUSTER}/no-such-link").status_code == 404
    # Firm names are escaped.
    html = client.get(
        URL, query_string={"f": "1", "active_only": "1", "exclude_cluster_firms": "1", "provinces": "广东省"}
    ).get_data(as_text=True)
    assert XSS_NAME not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
