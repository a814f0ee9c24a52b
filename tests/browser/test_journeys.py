"""Real-browser journeys over the bundled demo data: chain map → candidates, candidates → lead pipeline → export,
and a chain-leader firm's supplier search and matchmaking request."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import login, open_chain_map, screenshot

pytestmark = pytest.mark.browser


def _no_js_errors(page) -> None:
    assert not page.js_errors, page.js_errors


def test_manager_opens_empty_link_and_sees_candidates(page, live_server):
    login(page, live_server, "manager")
    open_chain_map(page, live_server)
    empty = page.locator(".tile.status-空白 > a.tile-name:visible").first
    assert empty.count() == 1, "the demo cluster's chain map has no 空白 link"
    link_name = empty.inner_text()
    empty.click()  # htmx swaps the link panel in
    panel = page.locator("#link-panel")
    panel.locator("h2", has_text=link_name).wait_for()
    page.wait_for_url(re.compile(r"/links/"))
    assert panel.locator("ol.candidates li").count() > 0 or "暂无候选企业" in panel.inner_text()
    panel.locator("a", has_text="查看全部候选企业").click()
    page.wait_for_url(re.compile(r"/candidates/"))
    page.wait_for_selector("#candidate-results")
    assert page.locator("h1").inner_text().startswith(f"“{link_name}”")
    cards = page.locator("li.cand")
    assert cards.count() > 0
    first = cards.first
    assert first.locator(".why").count() == 1 and "各通道得分" in first.inner_text()
    # A fresh instance (`chainmatch init`) ranks with the bundled pretrained model, its vectors attached at init.
    results = page.inner_text("#candidate-results")
    assert "匹配模型：intfloat/multilingual-e5-small" in results and "语义" in first.inner_text()
    assert "计算中" not in results
    assert re.search(r"匹配度 \d+", first.inner_text()) and re.search(r"证据[强中弱]", first.inner_text())
    first.locator("button", has_text="相关").first.click()
    first.locator(".feedback-form", has_text="已标注为“相关”").wait_for()
    _no_js_errors(page)
    screenshot(page, "a_manager_candidates")


def test_staff_filters_adds_target_moves_lead_and_exports(page, live_server, tmp_path):
    login(page, live_server, "staff")
    open_chain_map(page, live_server)
    key = page.locator(".tile.status-空白:visible").first.get_attribute("data-link")
    page.goto(f"{live_server.url}/candidates/{live_server.cluster_id}/{key}")
    before = page.locator("li.cand").count()
    assert before > 0
    # Filter to one province through the htmx form: the results swap in place and the URL follows.
    province = page.locator("li.cand").first.get_attribute("data-province")
    assert province
    page.fill("input[name=provinces]", province)
    with page.expect_response(re.compile(r"/candidates/.*provinces=")):
        page.click("button:has-text('应用筛选')")
    page.wait_for_url(re.compile(r"provinces="))
    regions = [
        page.locator("li.cand").nth(i).get_attribute("data-province") for i in range(page.locator("li.cand").count())
    ]
    assert regions and set(regions) == {province}
    assert page.locator("input[name=provinces]").input_value() == province  # the form stays as submitted
    # Add the first candidate to the target list, once.
    card = page.locator("li.cand").first
    name = card.locator(".cand-name").inner_text()
    card.locator("button", has_text="加入招商线索").click()
    card.locator(".lead-created", has_text="已加入").wait_for()
    card.locator("a", has_text="查看线索").click()
    page.wait_for_url(re.compile(r"/leads/\d+"))
    assert name in page.inner_text("body")
    for stage in ("已接洽", "实地考察", "洽谈"):
        page.select_option("select[name=stage]", stage)
        page.click("button:has-text('更新阶段')")
        page.locator(".stage-badge", has_text=stage).wait_for()
    page.goto(f"{live_server.url}/leads/")
    with page.expect_download() as download_info:
        page.click("a:has-text('导出 Excel')")
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.suffix == ".xlsx" and saved.stat().st_size > 0
    from openpyxl import load_workbook

    rows = list(load_workbook(saved).active.iter_rows(values_only=True))
    stage = rows[0].index("阶段")
    assert any(row[1] == name and row[stage] == "洽谈" for row in rows[1:])
    _no_js_errors(page)
    screenshot(page, "b_staff_pipeline")


def test_chain_leader_finds_suppliers_and_files_request(page, live_server):
    login(page, live_server, "firm")
    page.click("nav.main-nav a:has-text('供需对接')")
    page.wait_for_url(re.compile(r"/suppliers/"))
    needs = page.locator("input[name=need]")
    assert needs.count() > 0, "the chain leader's chains have no upstream links"
    needs.first.check()
    with page.expect_response(re.compile(r"/suppliers/\?")):
        page.click("button:has-text('查找供应商')")
    results = page.locator("#supplier-results li.supplier")
    results.first.wait_for()
    assert results.count() > 0
    supplier = results.first.locator(".cand-name").inner_text()
    results.first.locator("button", has_text="加入候选清单").click()
    results.first.locator("button", has_text="移出候选清单").wait_for()
    results.first.locator("input[name=note]").fill("希望了解供货周期")
    results.first.locator("button", has_text="申请对接").click()
    results.first.locator(".lead-created", has_text="已提交对接申请").wait_for()
    page.reload()
    mine = page.locator("#my-requests")
    assert supplier in mine.inner_text() and "待处理" in mine.inner_text()
    _no_js_errors(page)
    screenshot(page, "c_firm_suppliers", "#my-requests")
