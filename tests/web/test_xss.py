"""Stored (and reflected) XSS: enterprise names, notes, link names and file names carrying script payloads render
escaped on every page that shows them, full pages and htmx fragments alike.

The payloads are `<script>alert(1)</script>` (an enterprise name, a lead's next step, an import file name) and
`"><img src=x onerror=alert(1)>` (notes, need texts, a list note, a link description).
"""

from __future__ import annotations

import pytest

from tests.worlds.clusters import XSS_NAME, XSS_NOTE
from tests.worlds.security import BACKENDS, CHAIN, CLUSTER_A, build
from webapp.extensions import db

SCRIPT = XSS_NAME
IMG = XSS_NOTE
RAW_MARKERS = ("<script>alert(1)", "<img src=x onerror")
ESCAPED = {
    SCRIPT: "&lt;script&gt;alert(1)&lt;/script&gt;",
    IMG: "&lt;img src=x onerror=alert(1)&gt;",
}
BOTH = (SCRIPT, IMG)


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    built, cleanup = build(request.param, tmp_path_factory.mktemp(f"xss-{request.param}"))
    _add_payloads_through_the_app(built)
    yield built
    cleanup()


def _add_payloads_through_the_app(world) -> None:
    """Payloads entered the way users enter them (forms), plus a link named by a (hostile) chain-map file."""
    from chains.chain_models import Chain, ChainLink
    from webapp.services.audit import record
    from webapp.services.match import wait_for_background

    lead = world.ids["lead_a"]
    assert world.post("staff", f"/leads/{lead}/stage", {"stage": "已接洽"}).status_code in (200, 302, 303)
    response = world.post("staff", f"/leads/{lead}/edit", {"notes": IMG, "next_step": SCRIPT})
    assert response.status_code in (200, 302, 303)
    note_path = f"/clusters/{CLUSTER_A}/chains/{CHAIN}/lists/entries/{world.ids['entry_a']}/note"
    assert world.post("staff", note_path, {"note": f"复核：{IMG}"}).status_code in (200, 302, 303)
    with world.app.app_context():
        chain = db.session.get(Chain, CHAIN)
        link = db.session.scalars(
            db.select(ChainLink).where(ChainLink.version_id == chain.current_version_id, ChainLink.key == "tc-control")
        ).one()
        link.name = f"控制系统{SCRIPT}"
        link.description = IMG
        db.session.commit()
    with world.app.test_request_context():
        record("list.note", "list_entry", world.ids["entry_a"], cluster_id=CLUSTER_A, note=IMG, name=SCRIPT)
        db.session.commit()
    wait_for_background(world.app)


# (role, path, payloads the page must show escaped)
def _pages(ids) -> list[tuple[str, str, tuple[str, ...]]]:
    a, chain = CLUSTER_A, CHAIN
    return [
        ("staff", f"/clusters/{a}", (SCRIPT,)),  # recent lead activity names the firm
        ("staff", f"/clusters/{a}/chains/{chain}", (SCRIPT,)),  # tile of the renamed link
        ("staff", f"/clusters/{a}/chains/{chain}/links/tc-control", BOTH),  # link panel: name, description
        ("staff", f"/clusters/{a}/chains/{chain}/links/tc-parts", (SCRIPT,)),  # candidate firm
        ("staff", f"/clusters/{a}/chains/{chain}/lists", (IMG,)),  # list note
        ("staff", f"/clusters/{a}/chains/{chain}/lists/{ids['list_type_a']}/history", (IMG,)),
        ("staff", "/leads/", (SCRIPT,)),
        ("staff", "/leads/table", (SCRIPT,)),
        ("staff", f"/leads/{ids['lead_a']}", BOTH),
        ("manager", "/leads/register", (SCRIPT,)),  # firm name of the claim
        ("staff", f"/candidates/{a}/tc-parts", BOTH),  # name, main products
        ("staff", f"/firms/{ids['candidate']}", BOTH),
        ("staff", "/firms/?q=script", (SCRIPT,)),
        ("staff", "/suppliers/requests", BOTH),
        ("staff", f"/suppliers/requests/{ids['request_a']}", BOTH),
        ("firm", "/suppliers/", BOTH),
        ("firm", f"/suppliers/requests/{ids['request_a']}", BOTH),
        ("staff", "/imports/", (SCRIPT,)),  # file name
        ("staff", f"/imports/{ids['job']}", BOTH),  # report rows
        ("admin", "/audit/", BOTH),
        ("admin", "/auth/users/", (SCRIPT,)),  # a display name
        ("manager", f"/chains/{chain}/edit", BOTH),  # chain map editor: link name, description
        ("staff", f"/chains/{chain}/versions", ()),
        ("manager", f"/clusters/{a}/edit", ()),  # cluster fields in form values
        ("manager", f"/clusters/{a}/roster/search?q=script", (SCRIPT,)),  # registry search result
    ]


def _assert_escaped(html: str, expected: tuple[str, ...], where: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"unescaped payload on {where}"
    for payload in expected:
        assert ESCAPED[payload] in html, f"{where} should show {payload!r} (escaped)"


def test_payloads_render_escaped_on_every_page(world):
    for role, path, expected in _pages(world.ids):
        response = world.clients[role].get(path)
        assert response.status_code == 200, path
        _assert_escaped(response.get_data(as_text=True), expected, path)


def test_payloads_render_escaped_in_htmx_fragments(world):
    for role, path, expected in _pages(world.ids):
        response = world.clients[role].get(path, headers={"HX-Request": "true"})
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        for marker in RAW_MARKERS:
            assert marker not in html, f"unescaped payload in the fragment of {path}"


def test_reflected_query_text_is_escaped(world):
    for path in (f"/firms/?q={SCRIPT}", f"/leads/table?q={IMG}", f"/firms/?q={IMG}"):
        html = world.clients["staff"].get(path).get_data(as_text=True)
        for marker in RAW_MARKERS:
            assert marker not in html, path
    html = world.clients["firm"].get("/suppliers/", query_string={"q": SCRIPT}).get_data(as_text=True)
    assert RAW_MARKERS[0] not in html


def test_api_returns_payloads_as_json_not_html(world):
    response = world.api("staff", "GET", f"/api/v1/enterprises/{world.ids['candidate']}")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json()["name"] == SCRIPT
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_carry_a_csp_without_inline_scripts(world):
    response = world.clients["staff"].get(f"/leads/{world.ids['lead_a']}")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in response.get_data(as_text=True).replace("<script src=", "")
