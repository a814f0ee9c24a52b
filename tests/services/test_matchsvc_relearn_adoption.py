"""relearn on a real database (both backends) with a real signal: the learned re-ranker is adopted and used.

Synthetic data (generated here, not real firms): a 16-link chain; every link has three manufacturers whose
long profiles name the link's product once among other business, and three small traders whose short
profiles repeat it. The default lexical fusion ranks the traders first (short documents, repeated term);
the cluster has confirmed the manufacturers on 12 links, so learning can find out what those have in common.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chains.chain_models import Chain, ChainLink, ChainVersion
from chains.cluster_models import Cluster, ClusterChain, LinkAssignment, RosterEntry
from chains.enterprise_models import Enterprise
from chains.feedback_models import LearnedWeights
from webapp.extensions import db
from webapp.services import match as matchsvc
from webapp.services.match import engine_state, store

CHAIN = "syn-wind"
CLUSTER = "syn-wind-park"
PRODUCTS = [
    "齿轮箱",
    "轴承",
    "叶片",
    "变流器",
    "塔筒",
    "电缆",
    "密封件",
    "液压泵",
    "传感器",
    "电机",
    "控制器",
    "涂料",
    "紧固件",
    "铸件",
    "锻件",
    "阀门",
]
LABELLED = 12  # links with confirmed firms (learning needs at least matching.learning.MIN_EXAMPLES)
OTHER_BUSINESS = [
    "企业管理咨询",
    "技术推广服务",
    "货物进出口",
    "普通机械设备销售",
    "办公用品销售",
    "会议及展览服务",
    "信息技术咨询",
    "仓储服务",
]


def _firm(session, name: str, ext: str, scope: str) -> Enterprise:
    firm = Enterprise(
        name=name,
        name_norm=name,
        external_id=ext,
        province="江苏省",
        city="盐城市",
        main_products="",
        business_scope=scope,
        status="存续",
        is_synthetic=True,
        data_note="合成测试数据",
    )
    session.add(firm)
    return firm


def _seed(session) -> dict[str, dict[str, list[int]]]:
    chain = Chain(id=CHAIN, name="合成风电装备链", sector="新能源")
    session.add(chain)
    session.flush()
    version = ChainVersion(chain_id=CHAIN, version=1, checksum="w" * 64)
    session.add(version)
    session.flush()
    for pos, product in enumerate(PRODUCTS):
        session.add(
            ChainLink(
                version_id=version.id,
                key=f"{CHAIN}-{pos}",
                stage="中游",
                depth=1,
                position=pos,
                name=product,
                description="",
                keywords=[product],
                products=[product],
            )
        )
    chain.current_version_id = version.id
    cluster = Cluster(id=CLUSTER, name="合成风电装备园", province="江苏省", city="盐城市", cluster_type="风电")
    cluster.chains.append(ClusterChain(chain_id=CHAIN, position=0))
    session.add(cluster)
    firms: dict[str, dict[str, list]] = {}
    for pos, product in enumerate(PRODUCTS):
        makers = [
            _firm(
                session,
                f"合成{product}制造{j}号有限公司",
                f"syn-m-{pos}-{j}",
                "；".join([f"{product}的研发、生产与销售", *OTHER_BUSINESS]),
            )
            for j in range(3)
        ]
        traders = [
            _firm(session, f"合成{product}商行{j}号", f"syn-t-{pos}-{j}", f"{product}零售；{product}") for j in range(3)
        ]
        firms[f"{CHAIN}-{pos}"] = {"makers": makers, "traders": traders}
    session.flush()
    for pos in range(LABELLED):
        key = f"{CHAIN}-{pos}"
        for maker in firms[key]["makers"]:
            session.add(RosterEntry(cluster_id=CLUSTER, enterprise_id=maker.id, role="配套"))
            session.add(
                LinkAssignment(cluster_id=CLUSTER, enterprise_id=maker.id, chain_id=CHAIN, link_key=key, confirmed=True)
            )
    session.commit()
    return {key: {kind: [f.id for f in group] for kind, group in parts.items()} for key, parts in firms.items()}


@pytest.fixture
def world(app):
    with app.app_context():
        ids = _seed(db.session)
        matchsvc.sync(db.session, app)
        yield ids


def test_relearn_adopts_a_model_that_beats_the_defaults_and_search_uses_it(app, world):
    unseen = f"{CHAIN}-{len(PRODUCTS) - 1}"  # a link nobody labelled
    makers, traders = set(world[unseen]["makers"]), set(world[unseen]["traders"])
    before = matchsvc.candidates(db.session, CLUSTER, unseen, {}, k=6)
    assert {c.enterprise_id for c in before.items[:3]} == traders  # default fusion: the short trader profiles
    assert all("learned" not in c.channels for c in before.items)

    row = matchsvc.relearn(db.session, app)
    db.session.commit()
    assert row.adopted is True
    assert row.queries == LABELLED and row.positives == 3 * LABELLED
    assert row.gain is not None and row.gain > 0
    assert row.learned["ndcg@10"] > row.baseline["ndcg@10"]
    stored = db.session.scalars(select(LearnedWeights).order_by(LearnedWeights.id.desc())).first()
    assert stored.id == row.id and stored.adopted
    assert store.state_of(app).meta["learned_weights_id"] == row.id

    # Search now re-ranks with the learned model, and it generalises to the unlabelled link.
    after = matchsvc.candidates(db.session, CLUSTER, unseen, {}, k=6)
    assert {c.enterprise_id for c in after.items[:3]} == makers
    assert all("learned" in c.channels for c in after.items)
    # A fresh process loads the saved engine with the adopted model.
    app.extensions.pop(engine_state.EXTENSION_KEY)
    matchsvc.sync(db.session, app)
    assert store.state_of(app).engine.learned is not None
