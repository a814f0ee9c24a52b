"""Shared test data for the candidate, firm and supplier UI tests, built through the models (no tests here).

A small marine-equipment chain, one cluster in 青岛 with a chain-leader firm, supplier firms in the same city,
the same province and elsewhere, and synthetic filler firms so the real match engine has a pool to rank.
"""

from __future__ import annotations

from chains.cluster_models import RosterEntry
from chains.enterprise_models import Enterprise, EnterpriseChange
from tests.worlds.world import add_chain, add_cluster, synthetic_firm

XSS_NAME = "<script>alert(1)</script>"
CHAIN = "mc"
CLUSTER = "qd-marine"
OTHER_CLUSTER = "nt-marine"
STEEL = "mc-steel"
WELD = "mc-weld"
ENGINE = "mc-engine"

LINKS = [
    # key, stage, name, keywords, products
    (STEEL, "上游", "船用钢板", ["船用钢板", "船板"], ["高强度船板", "船用钢板"]),
    (WELD, "上游", "焊接材料", ["焊丝", "焊条"], ["船用焊丝"]),
    (ENGINE, "中游", "船用发动机", ["船用柴油机", "发动机"], ["低速柴油机"]),
    ("mc-service", "下游", "船舶运维", ["船舶维修", "运维"], ["修船服务"]),
]
# Distinct filler profiles: tied scores would make the engine's order between pages arbitrary.
FILLER_TOPICS = [
    f"{a} {b}"
    for a in ("生物医药", "软件开发", "食品加工", "服装纺织", "家具制造", "物流运输")
    for b in ("制剂研发", "信息系统", "饮料灌装", "面料印染")
]
FILLER_COUNT = 24  # with the steel firms, more than one page of candidates


def _firm(
    session, name, ext, province, city, products, scope="", status="存续", tags=(), capital=None, country="中国"
) -> Enterprise:
    return synthetic_firm(
        session,
        name,
        ext,
        tags,
        province=province,
        city=city,
        main_products=products,
        business_scope=scope or products,
        status=status,
        capital_wan_cny=capital,
        country=country,
    )


def build_world(session) -> dict:
    links = [
        dict(key=key, stage=stage, depth=1, name=name, description=f"{name}环节", keywords=keywords, products=products)
        for key, stage, name, keywords, products in LINKS
    ]
    add_chain(session, CHAIN, "测试海工装备链", "海洋装备", "m" * 64, links, [(STEEL, ENGINE)])
    for cid, name, province, city in (
        (CLUSTER, "青岛海工集聚区", "山东省", "青岛市"),
        (OTHER_CLUSTER, "南通海工集聚区", "江苏省", "南通市"),
    ):
        add_cluster(session, cid, name, CHAIN, province=province, city=city, cluster_type="海工")
    ids = {}
    leader = _firm(session, "青岛北海造船有限公司", "t-leader", "山东省", "青岛市", "散货船 油轮 船舶总装")
    other_leader = _firm(session, "南通远洋造船有限公司", "t-leader2", "江苏省", "南通市", "集装箱船 船舶总装")
    local_steel = _firm(session, "青岛本地船板厂", "t-local", "山东省", "青岛市", "船用钢板 高强度船板")
    far = _firm(
        session,
        "江苏船板钢铁有限公司",
        "t-js",
        "江苏省",
        "南通市",
        "船用钢板 高强度船板 船板 特种钢材",
        tags=("上市",),
        capital=50000,
    )
    province = _firm(
        session, "济南特钢船板有限公司", "t-jn", "山东省", "济南市", "船用钢板 高强度船板 钢材", capital=8000
    )
    city = _firm(
        session, "青岛西海岸钢材有限公司", "t-qd", "山东省", "青岛市", "高强度船板 船用钢板 钢材", capital=3000
    )
    weak_local = _firm(session, "青岛五金焊材商行", "t-weak", "山东省", "青岛市", "焊丝 五金 劳保用品")
    closed = _firm(
        session,
        "浙江已注销船板公司",
        "t-zj",
        "浙江省",
        "宁波市",
        "船用钢板 高强度船板 船板",
        status="注销",
        capital=20000,
    )
    foreign = _firm(session, "Nippon Marine Steel", "t-jp", "", "", "船用钢板 高强度船板", country="日本")
    xss = _firm(session, XSS_NAME, "t-xss", "广东省", "广州市", "船用钢板 焊丝")
    welder = _firm(session, "天津焊材有限公司", "t-tj", "天津市", "天津市", "焊丝 焊条 船用焊丝")
    fillers = [
        _firm(session, f"合成填充企业{i:02d}", f"t-fill-{i}", "河南省", "郑州市", FILLER_TOPICS[i % len(FILLER_TOPICS)])
        for i in range(FILLER_COUNT)
    ]
    session.flush()
    session.add(RosterEntry(cluster_id=CLUSTER, enterprise_id=leader.id, role="龙头"))
    session.add(RosterEntry(cluster_id=CLUSTER, enterprise_id=local_steel.id, role="配套"))
    session.add(RosterEntry(cluster_id=OTHER_CLUSTER, enterprise_id=other_leader.id, role="龙头"))
    session.add(
        EnterpriseChange(
            enterprise_id=far.id,
            field="main_products",
            old_value="钢材",
            new_value=far.main_products,
            source_file="firms-2024.csv",
        )
    )
    session.commit()
    ids.update(
        leader=leader.id,
        other_leader=other_leader.id,
        local=local_steel.id,
        far=far.id,
        province=province.id,
        city=city.id,
        closed=closed.id,
        foreign=foreign.id,
        xss=xss.id,
        welder=welder.id,
        weak_local=weak_local.id,
        fillers=[f.id for f in fillers],
    )
    return ids


def build_index(app) -> None:
    """Build the real match index over the test pool (what `chainmatch init` does)."""
    from webapp.extensions import db
    from webapp.services.match import rebuild

    with app.app_context():
        rebuild(app, db.session, reason="test")


def seed(app) -> dict:
    from webapp.extensions import db

    with app.app_context():
        ids = build_world(db.session)
    build_index(app)
    return ids


def copy_seeded(app, world_copy) -> dict:
    """A copy of the session's `seed` world in `app`, its saved index loaded as after `seed`."""
    from tests.worlds.snapshots import restore_indexed

    return restore_indexed(app, world_copy, seed)
