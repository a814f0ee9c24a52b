"""Shared test data for the cluster UI and leads tests, built through the models (no tests here)."""

from __future__ import annotations

from chains.cluster_models import ClusterIndicator, LinkAssignment, RosterEntry
from chains.enterprise_models import Enterprise
from tests.worlds.world import add_chain, add_cluster, synthetic_firm

XSS_NAME = "<script>alert(1)</script>"
XSS_NOTE = '"><img src=x onerror=alert(1)>'
CHAIN = "tc"
CLUSTER_A = "cluster-a"
CLUSTER_B = "cluster-b"

LINKS = [
    # key, parent, stage, name
    ("tc-materials", None, "上游", "基础材料"),
    ("tc-alloy", "tc-materials", "上游", "特种合金"),
    ("tc-coating", "tc-materials", "上游", "防腐涂层"),
    ("tc-parts", None, "中游", "核心部件"),
    ("tc-control", None, "中游", "控制系统"),
    ("tc-service", None, "下游", "运维服务"),
]
EDGES = [("tc-materials", "tc-parts"), ("tc-parts", "tc-service")]


def _firm(session, name: str, external_id: str, scope: str = "") -> Enterprise:
    return synthetic_firm(
        session,
        name,
        external_id,
        province="山东省",
        city="青岛市",
        status="存续",
        business_scope=scope,
        main_products=scope,
    )


def build_world(session) -> dict:
    """Two clusters on one chain; cluster A has firms placed on 核心部件 and a candidate firm named like a script."""
    links = [
        dict(
            key=key,
            parent_key=parent,
            stage=stage,
            depth=2 if parent else 1,
            name=name,
            description=f"{name}环节说明",
            keywords=[name, f"{name}关键词"],
            products=[f"{name}产品"],
        )
        for key, parent, stage, name in LINKS
    ]
    add_chain(session, CHAIN, "测试产业链", "装备", "x" * 64, links, EDGES)
    for cid, cname in ((CLUSTER_A, "甲集聚区"), (CLUSTER_B, "乙集聚区")):
        add_cluster(
            session, cid, cname, CHAIN, province="山东省", city="青岛市", cluster_type="装备", area_mu=3000, area_km2=2
        )
    session.add(
        ClusterIndicator(
            cluster_id=CLUSTER_A,
            year=2024,
            output_value=1200000,
            revenue=1100000,
            tax=60000,
            fixed_investment=900000,
            leading_revenue=800000,
            source="测试值",
        )
    )
    local = [_firm(session, f"本地部件企业{i}", f"test-local-{i}", "核心部件 制造") for i in range(3)]
    unplaced = _firm(session, "待归位企业", "test-unplaced", "控制系统 软件")
    candidate = _firm(session, XSS_NAME, "test-xss", "核心部件 控制系统")
    other = _firm(session, "乙区企业", "test-b", "运维服务")
    session.flush()
    for firm in local:
        session.add(RosterEntry(cluster_id=CLUSTER_A, enterprise_id=firm.id, role="骨干"))
        session.add(LinkAssignment(cluster_id=CLUSTER_A, enterprise_id=firm.id, chain_id=CHAIN, link_key="tc-parts"))
    session.add(RosterEntry(cluster_id=CLUSTER_A, enterprise_id=unplaced.id, role="配套"))
    session.add(RosterEntry(cluster_id=CLUSTER_B, enterprise_id=other.id, role="龙头"))
    session.add(LinkAssignment(cluster_id=CLUSTER_B, enterprise_id=other.id, chain_id=CHAIN, link_key="tc-service"))
    session.commit()
    return {"local": [f.id for f in local], "unplaced": unplaced.id, "candidate": candidate.id, "other": other.id}


def build_app_world(app) -> dict:
    """`build_world` in `app` (a world builder for the `world_copy` fixture)."""
    from webapp.extensions import db

    with app.app_context():
        return build_world(db.session)


def assert_htmx_indicators(html: str) -> int:
    """Every element that issues an htmx request names a loading indicator; returns how many there are."""
    import re

    tags = re.findall(r"<[a-z]+\s[^>]*\bhx-(?:get|post)=[^>]*>", html)
    for tag in tags:
        assert "hx-indicator=" in tag, tag
    return len(tags)
