"""The chain map editor: each edit a version with who and why, diffs, restore, YAML upload/download, attention."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from chains.chain_models import Chain, ChainVersion
from chains.cluster_models import LinkAssignment
from tests.worlds.clusters import CHAIN, CLUSTER_A, CLUSTER_B, build_app_world
from webapp.extensions import db
from webapp.services.audit.models import AuditEntry

EDIT = f"/chains/{CHAIN}"


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def _current(app) -> ChainVersion:
    with app.app_context():
        chain = db.session.get(Chain, CHAIN)
        version = chain.current_version
        _ = [(link.key, link.parent_key, link.name, link.keywords) for link in version.links], version.edges
        return version


def _links(app) -> dict:
    return {link.key: link for link in _current(app).links}


def test_manager_adds_a_sub_link_which_is_a_gap_with_candidates(app, auth, world, client):
    user = auth.login_as("manager", (CLUSTER_A,))
    assert client.get(f"{EDIT}/edit").status_code == 200
    response = auth.post(
        f"{EDIT}/links",
        {
            "parent": "tc-parts",
            "name": "精密轴承",
            "key": "bearing",
            "keywords": "轴承，滚动轴承、精密轴承",
            "reason": "补充缺失环节",
        },
    )
    assert response.status_code == 302
    version = _current(app)
    assert version.version == 2 and version.kind == "edit" and version.author == user
    assert version.reason == "补充缺失环节" and version.changes["added"] == ["tc-bearing"]
    link = _links(app)["tc-bearing"]
    assert link.parent_key == "tc-parts" and link.stage == "中游" and link.keywords == ["轴承", "滚动轴承", "精密轴承"]
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "chain.link_add")).one()
        assert entry.username == user and entry.detail["version"] == 2
    page = client.get(f"/clusters/{CLUSTER_A}/chains/{CHAIN}").get_data(as_text=True)
    assert re.search(r'class="tile status-空白[^"]*" id="tile-tc-bearing"', page)
    from webapp.services.match import wait_for_background

    assert client.get(f"/candidates/{CLUSTER_A}/tc-bearing").status_code == 200
    wait_for_background(app)  # the first ranking starts the index build; let it end before teardown


def test_htmx_edit_answers_the_editor_fragment(app, auth, world, client):
    auth.login_as("admin")
    response = auth.post(
        f"{EDIT}/links/tc-alloy",
        {
            "name": "高温合金",
            "keywords": "高温合金, 镍基合金",
            "key_tech_present": "1",
            "key_tech": "1",
            "key_tech_note": "依赖进口",
        },
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="chain-editor"') and "<html" not in html
    assert "已保存为第 2 版" in html
    link = _links(app)["tc-alloy"]
    assert link.name == "高温合金" and link.key_tech and link.keywords == ["高温合金", "镍基合金"]
    # The editor page shows the same fragment inside the full page.
    assert 'id="chain-editor"' in client.get(f"{EDIT}/edit").get_data(as_text=True)


def test_chain_fields_edit_and_diff(app, auth, world, client):
    auth.login_as("admin")
    auth.post(f"{EDIT}/fields", {"name": "测试产业链（修订）", "sector": "海工", "description": "说明"})
    version = _current(app)
    assert version.version == 2 and version.name == "测试产业链（修订）" and version.sector == "海工"
    with app.app_context():
        assert db.session.get(Chain, CHAIN).name == "测试产业链（修订）"
    html = client.get(f"{EDIT}/versions").get_data(as_text=True)
    assert "产业链信息" in html and "所属领域： → 海工" in html  # the fixture's version 1 has no sector
    assert "名称：" in html and "→ 测试产业链（修订）" in html
    empty = auth.post(f"{EDIT}/fields", {"name": " "}, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "产业链名称不能为空" in empty


def test_a_form_of_an_older_version_does_not_overwrite_a_newer_edit(app, auth, world, client):
    auth.login_as("admin")
    auth.post(f"{EDIT}/links/tc-alloy", {"keywords": "镍基合金", "base": "1"})  # version 2
    html = auth.post(
        f"{EDIT}/links/tc-alloy", {"name": "旧表单", "base": "1"}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "图谱已被其他用户修改（当前为第 2 版）" in html
    assert _links(app)["tc-alloy"].name == "特种合金" and _current(app).version == 2


def test_move_under_own_sub_link_is_refused_in_chinese(app, auth, world, client):
    auth.login_as("admin")
    html = auth.post(
        f"{EDIT}/move", {"link": "tc-materials", "parent": "tc-alloy"}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "不能把环节移动到它自己或它的子环节之下" in html
    assert _current(app).version == 1


def test_delete_and_move_keep_placements_and_flag_them(app, auth, world, client):
    auth.login_as("admin")
    auth.post(f"{EDIT}/move", {"link": "tc-service", "parent": "tc-parts"})
    auth.post(f"{EDIT}/links/tc-parts/delete", {"reason": "拆分环节"})
    links = _links(app)
    assert "tc-parts" not in links and "tc-service" not in links  # deleted with its sub-links
    assert all(e.from_key != "tc-parts" for e in _current(app).edges)
    with app.app_context():
        kept = db.session.scalars(select(LinkAssignment).where(LinkAssignment.link_key == "tc-parts")).all()
        assert len(kept) == 3  # never lost
    page = client.get(f"{EDIT}/versions").get_data(as_text=True)
    assert "需要关注" in page and page.count('class="needs-attention"') == 4  # 3 in A + 1 in B on tc-service
    assert "已删除" in page


def test_moved_link_flags_work_placed_before_the_move(app, auth, world, client):
    from webapp.leads.attention import MOVED, attention_items

    auth.login_as("admin")
    auth.post(f"{EDIT}/move", {"link": "tc-service", "parent": "tc-control"})
    with app.app_context():
        items = attention_items(db.session, CHAIN, [CLUSTER_B])
    assert [(i.link_key, i.reason, i.kind) for i in items] == [("tc-service", MOVED, "企业归位")]


def test_diff_between_any_two_versions(app, auth, world, client):
    auth.login_as("admin")
    auth.post(f"{EDIT}/links", {"stage": "下游", "name": "整机集成", "key": "integration"})
    auth.post(f"{EDIT}/links/tc-coating", {"name": "海洋防腐涂层", "products": "涂料"})
    auth.post(f"{EDIT}/move", {"link": "tc-control", "parent": "tc-parts"})
    auth.post(f"{EDIT}/links/tc-service/delete", {})
    auth.post(f"{EDIT}/edges", {"from": "tc-control", "to": "tc-integration"})
    assert _current(app).version == 6
    with app.app_context():  # every edit is audited
        actions = list(
            db.session.scalars(
                select(AuditEntry.action).where(AuditEntry.action.startswith("chain.")).order_by(AuditEntry.id)
            )
        )
        assert actions == [
            "chain.link_add",
            "chain.link_update",
            "chain.link_move",
            "chain.link_delete",
            "chain.edge_add",
        ]
    html = client.get(f"{EDIT}/versions?a=1&b=6").get_data(as_text=True)
    for text in (
        "新增环节",
        "整机集成",
        "删除环节",
        "运维服务",
        "更名",
        "防腐涂层 → 海洋防腐涂层",
        "移动",
        "控制系统：（顶层） → 核心部件",
        "字段修改",
        "产品",
        "新增供应关系",
        "控制系统 → 整机集成",
    ):
        assert text in html, text
    fragment = client.get(f"{EDIT}/versions?a=2&b=3", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="version-diff"') and "更名" in fragment and "整机集成" not in fragment


def test_admin_restores_an_earlier_version(app, auth, world, client):
    auth.login_as("manager", (CLUSTER_A,))
    auth.post(f"{EDIT}/links/tc-alloy/delete", {})
    assert auth.post(f"{EDIT}/versions/1/restore", {}).status_code == 403  # managers cannot restore
    auth.logout()
    auth.login_as("admin")
    response = auth.post(f"{EDIT}/versions/1/restore", {"reason": "误删"})
    assert response.status_code == 302
    version = _current(app)
    assert version.version == 3 and version.kind == "restore" and version.reason == "误删"
    assert "tc-alloy" in _links(app)
    assert set(_links(app)) == {"tc-materials", "tc-alloy", "tc-coating", "tc-parts", "tc-control", "tc-service"}
    with app.app_context():
        assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "chain.restore")).one()


def test_yaml_download_and_upload_with_line_errors(app, auth, world, client):
    auth.login_as("manager", (CLUSTER_A,))
    text = client.get(f"{EDIT}/export.yaml").get_data(as_text=True)
    assert "id: tc-parts" in text
    bad = text.replace("stage: 下游", "stage: 外游", 1)
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "外游" in text)
    response = auth.post(
        f"{EDIT}/upload",
        {"file": (io.BytesIO(bad.encode()), "tc.yaml")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "未通过校验" in html and f"第 {line} 行" in html and "stage 无效" in html
    assert _current(app).version == 1
    good = text.replace("name: 运维服务", "name: 运维与检测服务")
    auth.post(
        f"{EDIT}/upload",
        {"file": (io.BytesIO(good.encode()), "tc.yaml"), "reason": "更新下游"},
        content_type="multipart/form-data",
    )
    version = _current(app)
    assert version.version == 2 and version.kind == "upload" and version.reason == "更新下游"
    assert _links(app)["tc-service"].name == "运维与检测服务"


def test_admin_creates_a_chain_by_upload(app, auth, world, client):
    auth.login_as("admin")
    page = client.get("/chains/").get_data(as_text=True)
    assert "<title>产业链维护 · 产业链精准招商匹配平台</title>" in page and "<h1>产业链维护</h1>" in page
    assert page.count('id="new-chain"') == 1 and page.index('id="new-chain"') > page.index("<h1>")
    text = (
        "id: nc\nname: 新产业链\nlinks:\n  - id: nc-a\n    name: 甲环节\n    stage: 上游\n  - id: nc-b\n    name: 乙\n"
    )
    html = auth.post(
        "/chains/new",
        {"file": (io.BytesIO(text.encode()), "nc.yaml")},
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "第 7 行：顶层环节 nc-b 缺少 stage" in html
    fixed = text + "    stage: 下游\n"
    response = auth.post(
        "/chains/new", {"file": (io.BytesIO(fixed.encode()), "nc.yaml")}, content_type="multipart/form-data"
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/chains/nc/edit")
    with app.app_context():
        version = db.session.get(Chain, "nc").current_version
        assert version.kind == "upload" and len(version.links) == 2
    again = auth.post(
        "/chains/new",
        {"file": (io.BytesIO(fixed.encode()), "nc.yaml")},
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "产业链 nc 已存在" in again


def test_role_rule_for_editing(app, auth, world, client):
    auth.login_as("staff", (CLUSTER_A,))
    assert client.get(f"{EDIT}/edit").status_code == 403
    assert client.get(f"{EDIT}/versions").status_code == 200
    assert auth.post(f"{EDIT}/links", {"stage": "上游", "name": "x"}).status_code == 403
    auth.logout()
    with app.app_context():
        from chains.cluster_models import Cluster, ClusterChain
        from tests.worlds.world import add_chain, add_cluster

        add_chain(
            db.session,
            "oc",
            "另一产业链",
            "",
            "y" * 64,
            [dict(key="oc-a", parent_key=None, stage="上游", depth=1, name="甲")],
        )
        add_cluster(db.session, "cluster-c", "丙集聚区", "oc")
        db.session.commit()
        assert db.session.get(Cluster, CLUSTER_B).chains[0].chain_id == CHAIN and ClusterChain
    auth.login_as("manager", (CLUSTER_B,))
    assert client.get(f"{EDIT}/edit").status_code == 200  # a shared chain: a manager of any cluster using it
    assert client.get("/chains/oc/edit").status_code == 403
    assert "另一产业链" not in client.get("/chains/").get_data(as_text=True)


def test_match_index_and_gaps_follow_a_new_version_without_a_manual_step(app, auth, world, client):
    from webapp.services.match import candidates, wait_for_background

    auth.login_as("admin")
    client.get(f"/candidates/{CLUSTER_A}/tc-parts")
    wait_for_background(app)  # the index exists before the edit
    auth.post(
        f"{EDIT}/links", {"parent": "tc-control", "name": "控制软件", "key": "software", "keywords": "控制系统、软件"}
    )
    with app.test_request_context():
        page = candidates(db.session, CLUSTER_A, "tc-software", {}, 10, 0)
        assert page.cache_key is not None, page.message  # ranked by the index, not a keyword fallback
        assert world["candidate"] in [c.enterprise_id for c in page.items]
        from chains.gaps import analyze_chain

        gap = analyze_chain(db.session, CLUSTER_A, CHAIN)
        assert gap.link("tc-software").status == "空白"
    wait_for_background(app)


def test_lead_on_a_deleted_link_is_kept_and_flagged(app, auth, world, client):
    from webapp.leads.models import Lead

    with app.app_context():
        lead = Lead(cluster_id=CLUSTER_A, chain_id=CHAIN, link_key="tc-control", enterprise_id=world["candidate"])
        db.session.add(lead)
        db.session.commit()
        lead_id = lead.id
    auth.login_as("admin")
    assert "需要关注" not in client.get(f"/leads/{lead_id}").get_data(as_text=True)
    auth.post(f"{EDIT}/links/tc-control/delete", {"reason": "并入核心部件"})
    html = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    assert "环节已删除 · 需要关注" in html
    auth.post(f"{EDIT}/versions/1/restore", {})
    assert "需要关注" not in client.get(f"/leads/{lead_id}").get_data(as_text=True)


def test_init_keeps_maps_and_clusters_edited_in_the_browser(app, world):
    from chains.chainmap_edit import current_draft, save_draft
    from webapp.cli.chains import (
        CHAINS_DATA_DIR,
        browser_edited_chains,
        browser_edited_clusters,
        load_bundled_chains,
    )
    from webapp.services.audit import record

    with app.app_context():
        load_bundled_chains(app)
        draft = current_draft(db.session, "pv")
        first = draft.links[0]["id"]
        draft.update_link(first, name="在线改名")
        save_draft(db.session, draft, None, "tester", "浏览器编辑")
        record("cluster.indicators", "cluster", CLUSTER_A, cluster_id=CLUSTER_A)
        db.session.commit()
        assert browser_edited_chains() == {"pv"} and browser_edited_clusters() == {CLUSTER_A}
        load_bundled_chains(app)  # `chainmatch init` again: the browser edit is not reverted
        version = db.session.get(Chain, "pv").current_version
        assert version.kind == "edit" and next(link for link in version.links if link.key == first).name == "在线改名"
        assert (CHAINS_DATA_DIR / "pv.yaml").exists()


def test_new_link_ids_are_free_slugs_under_the_chain():
    from chains.chainmap_edit import ChainDraft, split_terms

    draft = ChainDraft(
        "tc",
        {"name": "x", "sector": "", "version": "", "description": "", "source": ""},
        [{"id": "tc-a", "parent": None, "name": "A", "stage": "上游"}],
        [],
    )
    ids = [
        draft.add_link("n", stage="上游", key="Foo")["id"],
        draft.add_link("n", stage="上游", key="tc-foo")["id"],
        draft.add_link("n", stage="上游", key="中文")["id"],
        draft.add_link("n", stage="上游")["id"],
        draft.add_link("n", parent="tc-a", key="a")["id"],
    ]
    assert ids == ["tc-foo", "tc-foo-1", "tc-link-1", "tc-link-2", "tc-a-1"]
    assert draft.link("tc-a-1")["stage"] == "上游"
    assert split_terms("轴承，滚动轴承、 精密轴承;轴承\n齿轮") == ["轴承", "滚动轴承", "精密轴承", "齿轮"]
