"""企业检索 and the enterprise page: search with filters and pagination, profile sections, access, escaping."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.worlds.candidates import CLUSTER, OTHER_CLUSTER, STEEL, XSS_NAME, copy_seeded, seed
from webapp.extensions import db
from webapp.firms.views import NOTICE_INDEX_LOADING, PAGE_SIZE
from webapp.leads.models import Lead
from webapp.leads.service import create_lead
from webapp.services.match import wait_for_background


@pytest.fixture
def world(app, world_copy):
    return copy_seeded(app, world_copy)


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/firms/(\d+)">', html)]


def test_search_ranks_filters_and_pages(client, auth, world):
    auth.login_as("staff", clusters=(CLUSTER,))
    page = client.get("/firms/").get_data(as_text=True)
    assert "请输入检索内容" in page and 'hx-target="#firm-results"' in page
    html = client.get("/firms/", query_string={"q": "船用钢板"}).get_data(as_text=True)
    ids = _ids(html)
    assert ids[0] in {world["far"], world["local"], world["province"], world["city"]}
    assert world["closed"] not in ids  # 注销 is filtered out by default
    assert "<mark>船用钢板</mark>" in html and "匹配模型：" in html
    fragment = client.get(
        "/firms/",
        query_string={"q": "船用钢板", "f": "1", "active_only": "1", "provinces": "山东省"},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "<html" not in fragment
    assert set(_ids(fragment)) <= {
        world["local"],
        world["province"],
        world["city"],
        world["leader"],
        world["weak_local"],
    }  # 山东省 only
    assert {world["local"], world["province"], world["city"]} <= set(_ids(fragment))
    assert world["far"] not in _ids(fragment)
    first = _ids(client.get("/firms/", query_string={"q": "企业"}).get_data(as_text=True))
    assert len(first) == PAGE_SIZE
    second = client.get("/firms/", query_string={"q": "企业", "page": "2"}, headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert _ids(second) and not set(_ids(second)) & set(first) and "上一页" in second


def test_enterprise_page_sections(app, client, auth, world):
    with app.app_context():
        create_lead(db.session, CLUSTER, world["far"], None, "mc", STEEL)
        create_lead(db.session, OTHER_CLUSTER, world["far"], None, "mc", STEEL)
        db.session.commit()
    auth.login_as("manager", clusters=(CLUSTER,))
    html = client.get(f"/firms/{world['far']}").get_data(as_text=True)
    assert "江苏船板钢铁有限公司" in html and "合成数据" in html and "上市" in html
    for section in ('id="profile"', 'id="fits"', 'id="similar"', 'id="leads"', 'id="changes"'):
        assert section in html
    fits = html[html.index('id="fits"') : html.index('id="similar"')]
    assert "船用钢板" in fits  # the link it fits best
    similar = html[html.index('id="similar"') : html.index('id="leads"')]
    assert re.search(r'href="/firms/\d+"', similar)
    leads = html[html.index('id="leads"') : html.index('id="changes"')]
    assert "青岛海工集聚区" in leads and "南通海工集聚区" not in leads  # only leads of the user's clusters
    changes = html[html.index('id="changes"') :]
    assert "firms-2024.csv" in changes and "主营产品" in changes
    assert client.get("/firms/999999").status_code == 404


def _fit_row(html: str, link_name: str) -> str:
    fits = html[html.index('id="fits"') : html.index('id="similar"')]
    return next(row for row in fits.split("<tr>") if f"<td>{link_name}</td>" in row)


def test_a_firm_found_by_search_becomes_a_lead_from_its_page(app, client, auth, world):
    """企业检索 → the firm's page → 加入招商线索 on a link it fits: the lead is created for the user's cluster, and the
    row then links to it instead of offering a second one; a user of two clusters developing the chain picks one."""
    auth.login_as("staff", clusters=(CLUSTER,))
    row = _fit_row(client.get(f"/firms/{world['far']}").get_data(as_text=True), "船用钢板")
    form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', row))
    assert (form["cluster_id"], form["chain_id"], form["link_key"]) == (CLUSTER, "mc", STEEL)
    assert form["enterprise_id"] == str(world["far"]) and "加入招商线索" in row and "<select" not in row
    created = auth.post("/leads/create", {k: v for k, v in form.items() if k != "csrf_token"})
    assert created.status_code == 302
    with app.app_context():
        lead = db.session.scalars(select(Lead).where(Lead.enterprise_id == world["far"])).one()
        assert (lead.cluster_id, lead.chain_id, lead.link_key, lead.stage) == (CLUSTER, "mc", STEEL, "候选")
    row = _fit_row(client.get(f"/firms/{world['far']}").get_data(as_text=True), "船用钢板")
    assert f'href="/leads/{lead.id}"' in row and "线索：候选" in row and "加入招商线索" not in row
    auth.logout()
    auth.login_as("staff", clusters=(CLUSTER, OTHER_CLUSTER))
    html = client.get(f"/firms/{world['far']}").get_data(as_text=True)
    row = _fit_row(html, "船用钢板")
    assert f'href="/leads/{lead.id}"' in row and "青岛海工集聚区线索：候选" in row  # named, as there are two clusters
    assert f'name="cluster_id" value="{OTHER_CLUSTER}"' in row and "<select" not in row  # the other may still add one
    fits = html[html.index('id="fits"') : html.index('id="similar"')]
    assert re.findall(r'<option value="([^"]+)">', fits)[:2] == sorted([CLUSTER, OTHER_CLUSTER])  # other links


def test_enterprise_page_while_the_index_loads_says_why_sections_are_empty(app, client, auth, world_copy):
    ids = world_copy(seed)  # the saved index is not loaded into this process yet
    auth.login_as("manager", clusters=(CLUSTER,))
    html = client.get(f"/firms/{ids['far']}").get_data(as_text=True)
    assert NOTICE_INDEX_LOADING in html
    assert not re.search(r'href="/firms/\d+"', html[html.index('id="similar"') : html.index('id="leads"')])
    wait_for_background(app)
    html = client.get(f"/firms/{ids['far']}").get_data(as_text=True)
    assert NOTICE_INDEX_LOADING not in html
    assert re.search(r'href="/firms/\d+"', html[html.index('id="similar"') : html.index('id="leads"')])


def test_access_and_escaping(client, auth, world):
    auth.login_as("firm", enterprise_id=world["leader"])
    assert client.get("/firms/").status_code == 403
    assert client.get(f"/firms/{world['far']}").status_code == 403
    auth.logout()
    auth.login_as("staff", clusters=(CLUSTER,))
    html = client.get(f"/firms/{world['xss']}").get_data(as_text=True)
    assert XSS_NAME not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    results = client.get("/firms/", query_string={"q": "焊丝"}).get_data(as_text=True)
    assert XSS_NAME not in results and "&lt;script&gt;" in results


def test_contacts_show_on_the_firm_and_lead_pages_and_in_the_api(app, client, auth, world):
    from chains.enterprise_models import Enterprise

    with app.app_context():
        firm = db.session.get(Enterprise, world["far"])
        firm.legal_representative, firm.phone = "李四", "0513-12345678"
        firm.email, firm.website = "bd@example.com", '"><script>alert(2)</script>'
        lead, _ = create_lead(db.session, CLUSTER, world["far"], None, "mc", STEEL)
        db.session.commit()
        lead_id = lead.id
    auth.login_as("staff", clusters=(CLUSTER,))
    profile = client.get(f"/firms/{world['far']}").get_data(as_text=True)
    profile = profile[profile.index('id="profile"') : profile.index('id="fits"')]
    assert "法定代表人" in profile and "李四" in profile
    assert '<a href="tel:051312345678">0513-12345678</a>' in profile
    assert '<a href="mailto:bd@example.com">bd@example.com</a>' in profile
    lead_page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    contacts = lead_page[lead_page.index('class="small lead-contacts"') :][:400]
    assert "李四" in contacts and "0513-12345678" in contacts and "bd@example.com" in contacts
    assert "<script>alert(2)" not in lead_page + profile and "&lt;script&gt;alert(2)" in contacts
    api = client.get(f"/api/v1/enterprises/{world['far']}").get_json()
    assert (api["legal_representative"], api["phone"], api["email"]) == ("李四", "0513-12345678", "bd@example.com")


def test_a_chain_leader_never_sees_other_firms_contacts(app, client, auth, world):
    from chains.enterprise_models import Enterprise

    with app.app_context():
        firm = db.session.get(Enterprise, world["far"])
        firm.legal_representative, firm.phone, firm.email = "李四", "0513-12345678", "bd@example.com"
        db.session.commit()
    auth.login_as("firm", enterprise_id=world["leader"])
    found = client.get("/suppliers/", query_string={"f": "1", "need": f"{CLUSTER}|{STEEL}"}).get_data(as_text=True)
    assert "江苏船板钢铁有限公司" in found  # the firm is a supplier result …
    assert "0513-12345678" not in found and "bd@example.com" not in found and "李四" not in found  # … without contacts
    assert client.get(f"/api/v1/enterprises/{world['far']}").status_code == 403
