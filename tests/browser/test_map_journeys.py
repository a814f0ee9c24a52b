"""Real-browser journeys of living maps: a manager adds a sub-link and opens its candidates, an administrator
restores an earlier chain map version, a manager edits indicators and sees the policy evaluation change."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import login, open_chain_map, screenshot

pytestmark = pytest.mark.browser


def _chain_id(page, live_server) -> str:
    open_chain_map(page, live_server)
    return re.search(r"/chains/([^/?#]+)", page.url).group(1)


def _rule_result(page, rule: str) -> str:
    return page.locator("tr.rule-row", has_text=rule).locator("td").nth(4).inner_text().strip()


def test_manager_adds_sub_link_sees_gap_and_opens_candidates(page, live_server):
    login(page, live_server, "manager")
    chain_id = _chain_id(page, live_server)
    page.locator("a", has_text="编辑图谱").click()
    page.wait_for_selector("#chain-editor")
    parent = page.locator("li.edit-link.depth-1").first
    parent_key = parent.get_attribute("data-link")
    parent.locator("summary").first.click()
    parent.locator("summary", has_text="新增子环节").click()
    form = page.locator(f"#add-under-{parent_key}")
    form.locator("input[name=name]").fill("船用推进器")
    form.locator("input[name=key]").fill("browser-propeller")
    form.locator("input[name=keywords]").fill("螺旋桨、推进器，船用推进系统")
    form.locator("input[name=reason]").fill("浏览器测试：补充缺失环节")
    form.locator("button[type=submit]").click()  # htmx swaps the editor
    page.locator("#chain-editor .flash-success", has_text="已保存为第").wait_for()
    key = f"{chain_id}-browser-propeller"
    assert page.locator(f"#link-{key}").count() == 1
    page.goto(f"{live_server.url}/clusters/{live_server.cluster_id}/chains/{chain_id}")
    tile = page.locator(f"#tile-{key}")
    assert "status-空白" in tile.get_attribute("class")
    page.locator(f"#tile-{parent_key} > details.sublinks > summary").click()
    tile.locator("a.tile-name").click()
    panel = page.locator("#link-panel")
    panel.locator("h2", has_text="船用推进器").wait_for()
    assert "空白" in panel.locator("h2 .badge").inner_text()
    panel.locator("a", has_text="查看全部候选企业").click()
    page.wait_for_url(re.compile(rf"/candidates/.*/{key}"))
    page.wait_for_selector("#candidate-results")
    assert page.locator("h1").inner_text().startswith("“船用推进器”")
    assert page.locator("li.cand").count() > 0
    assert not page.js_errors, page.js_errors
    screenshot(page, "d_manager_new_sublink_candidates")


def test_admin_restores_an_earlier_version(page, live_server):
    login(page, live_server, "admin")
    chain_id = _chain_id(page, live_server)
    page.goto(f"{live_server.url}/chains/{chain_id}/edit")
    page.locator("#add-top-section > summary").click()
    add = page.locator("#add-top")
    add.locator("input[name=name]").fill("临时测试环节")
    add.locator("button[type=submit]").click()
    page.locator("#chain-editor .flash-success", has_text="已保存为第").wait_for()
    saved = int(re.search(r"第 (\d+) 版", page.locator("#chain-editor .flash-success").inner_text()).group(1))
    page.goto(f"{live_server.url}/chains/{chain_id}/versions")
    assert "临时测试环节" in page.locator("#version-diff").inner_text()  # previous → current by default
    page.locator(f"#version-{saved - 1} button", has_text="恢复此版本").click()
    page.locator(".flash-success", has_text=f"已将第 {saved - 1} 版恢复为第 {saved + 1} 版").wait_for()
    assert "当前" in page.locator(f"#version-{saved + 1}").inner_text()
    assert "恢复旧版本" in page.locator(f"#version-{saved + 1}").inner_text()
    diff = page.locator("#version-diff")
    assert "删除环节" in diff.inner_text() and "临时测试环节" in diff.inner_text()
    page.goto(f"{live_server.url}/chains/{chain_id}/edit")
    assert page.locator("li.edit-link", has_text="临时测试环节").count() == 0
    assert not page.js_errors, page.js_errors
    screenshot(page, "e_admin_restores_version")


def test_manager_edits_indicators_and_sees_evaluation_change(page, live_server):
    login(page, live_server, "manager")
    dashboard = f"{live_server.url}/clusters/{live_server.cluster_id}"
    page.goto(dashboard)
    page.locator(".sub-nav a", has_text="编辑集聚区").click()
    form = page.locator("#indicators form")
    for name, value in (("revenue", "500000"), ("leading_revenue", "450000")):
        form.locator(f"input[name={name}]").fill(value)
    form.locator("button[type=submit]").click()  # htmx swaps the indicators section
    page.locator("#indicators .flash-success", has_text="指标已保存").wait_for()
    page.locator("#indicators a", has_text="查看政策规则评价").click()
    page.wait_for_selector("table.rules")
    assert _rule_result(page, "主导产业集聚度") == "达标"
    page.locator(".sub-nav a", has_text="编辑集聚区").click()
    form = page.locator("#indicators form")
    form.locator("input[name=leading_revenue]").fill("1000")
    form.locator("button[type=submit]").click()
    page.locator("#indicators .indicator-history li", has_text="1000").first.wait_for()
    page.goto(dashboard)
    assert _rule_result(page, "主导产业集聚度") == "未达标"
    assert not page.js_errors, page.js_errors
    screenshot(page, "f_manager_indicators_evaluation", "table.rules")
