"""A lead's registered contacts are links a phone can act on: tap to call the first number, tap to write."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.worlds.clusters import CHAIN, CLUSTER_A, build_app_world
from webapp.extensions import db
from webapp.leads.models import Lead
from webapp.web.contacts import tel_href


@pytest.mark.parametrize(
    "cell, href",
    [
        ("0532-88886666", "tel:053288886666"),
        ("0532-88886666；0532-88886667", "tel:053288886666"),
        ("(0532) 8888 6666, 13800000000", "tel:053288886666"),
        ("+86 532 8888 6666", "tel:+8653288886666"),
        ("13800000000/13900000000", "tel:13800000000"),
        ("0532-88886666 0532-88886667", ""),  # two numbers without a separator: which one is unclear
        ("暂无", ""),
        ("-", ""),
        ("转 123", ""),
        ("javascript:alert(1)", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_tel_href_dials_the_first_number_of_a_cell(cell, href):
    assert tel_href(cell) == href


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def test_lead_page_links_phone_and_email_and_leaves_odd_values_as_text(app, auth, world, client):
    from chains.enterprise_models import Enterprise

    with app.app_context():
        firm = db.session.get(Enterprise, world["unplaced"])
        firm.phone, firm.email = "0532-66668888；0532-66668889", "bd@example.com"
        other = db.session.get(Enterprise, world["local"][0])
        other.phone, other.email = "暂无", "javascript:alert(1)"
        db.session.commit()
    auth.login_as("staff", clusters=(CLUSTER_A,))
    pages = {}
    for key, firm_id in (("unplaced", world["unplaced"]), ("local", world["local"][0])):
        auth.post("/leads/create", {"cluster_id": CLUSTER_A, "chain_id": CHAIN, "enterprise_id": firm_id})
        with app.app_context():
            lead_id = db.session.scalars(select(Lead.id).where(Lead.enterprise_id == firm_id)).one()
        html = client.get(f"/leads/{lead_id}").get_data(as_text=True)
        pages[key] = html[html.index('class="small lead-contacts"') :][:500]
    assert '<a href="tel:053266668888">0532-66668888；0532-66668889</a>' in pages["unplaced"]
    assert '<a href="mailto:bd@example.com">bd@example.com</a>' in pages["unplaced"]
    assert "tel:" not in pages["local"] and "mailto:" not in pages["local"] and 'href="javascript' not in pages["local"]
    assert "暂无" in pages["local"] and "javascript:alert(1)" in pages["local"]
