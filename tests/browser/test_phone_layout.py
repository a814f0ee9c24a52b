"""On a phone (390 px wide) every page fits the screen: staff in the field read the menu, the cluster page, the
chain map, candidates, a firm's page and the lead pages without the whole page scrolling sideways (wide tables
scroll inside)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login, open_chain_map, screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _menu_paths(page) -> list[str]:
    paths = []
    for a in page.locator("nav a[href]").all():
        href = a.get_attribute("href") or ""
        if href.startswith("/") and href not in paths:
            paths.append(href)
    return paths


def _sideways_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.parametrize("role", ["staff", "firm"])
def test_every_menu_page_fits_a_phone_screen(browser, live_server, role):
    context = browser.new_context(locale="zh-CN", viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        login(page, live_server, role)
        cluster = live_server.cluster_id
        paths = ["/", *_menu_paths(page)]
        if role == "staff":
            paths += [f"/clusters/{cluster}", "/leads/projects", "/leads/kpi", f"/firms/{live_server.leader_id}"]
        too_wide = {}
        for path in paths:
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            overflow = _sideways_overflow(page)
            if overflow > 1:
                too_wide[path] = overflow
        assert not too_wide, f"pages wider than a 390 px screen (px too wide): {too_wide}"
        # The menu stays usable: every entry is on screen, none cut off at the right edge.
        page.goto(live_server.url + "/")
        for box in (a.bounding_box() for a in page.locator("nav.main-nav a").all()):
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        screenshot(page, f"phone_{role}_home")
    finally:
        context.close()


def test_candidates_and_chain_map_fit_a_phone_screen(browser, live_server):
    context = browser.new_context(locale="zh-CN", viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        login(page, live_server, "staff")
        open_chain_map(page, live_server)
        assert _sideways_overflow(page) <= 1
        empty = page.locator(".tile.status-空白 > a.tile-name:visible").first
        name = empty.inner_text()
        empty.click()
        # The panel sits below the whole map on a phone: choosing a tile brings it into view.
        heading = page.locator("#link-panel h2", has_text=name)
        heading.wait_for()
        page.wait_for_function(
            "() => { const r = document.querySelector('#link-panel h2').getBoundingClientRect();"
            " return r.top >= 0 && r.bottom <= window.innerHeight; }"
        )
        # Opened by its own URL (a shared link), the link's panel is in view too.
        page.reload()
        page.wait_for_load_state("networkidle")
        box = page.locator("#link-panel h2").bounding_box()
        assert box is not None and 0 <= box["y"] <= PHONE["height"], box
        page.locator("#link-panel a", has_text="查看全部候选企业").click()
        page.wait_for_selector("li.cand")
        assert _sideways_overflow(page) <= 1
        # Candidates first, the long filter form after them, reached by the link at the top.
        first, form = page.locator("li.cand").first.bounding_box(), page.locator("form.filter-form").bounding_box()
        assert first is not None and form is not None and first["y"] < form["y"]
        page.locator("a", has_text="筛选条件").click()
        page.wait_for_function("location.hash === '#filters'")
        screenshot(page, "phone_staff_candidates")
    finally:
        context.close()


def test_wide_screen_keeps_its_place_when_a_tile_opens_the_panel(page, live_server):
    """Beside the map the panel is already in view: opening a link must not scroll the map away."""
    login(page, live_server, "staff")
    open_chain_map(page, live_server)
    tile = page.locator(".tile.status-空白 > a.tile-name:visible").last
    tile.scroll_into_view_if_needed()
    before = page.evaluate("window.scrollY")
    name = tile.inner_text()
    tile.click()
    page.locator("#link-panel h2", has_text=name).wait_for()
    page.wait_for_timeout(300)
    assert page.evaluate("window.scrollY") == before
