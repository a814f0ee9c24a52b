"""A small synthetic dataset for the matching-service tests: one chain, one cluster, ~30 firms (synthetic, not real)."""

from __future__ import annotations

import pytest

from chains.chain_models import Chain, ChainLink, ChainVersion
from chains.cluster_models import Cluster, ClusterChain, RosterEntry
from chains.enterprise_models import Enterprise, EnterpriseTag
from tests.worlds.snapshots import restore_indexed
from webapp.extensions import db
from webapp.services import match as matchsvc

CHAIN_ID = "tev"
CLUSTER_ID = "test-cluster"

# (key, parent, name, stage, keywords, products)
LINKS = [
    ("tev-battery", None, "动力电池", "中游", ["动力电池"], []),
    ("tev-cell", "tev-battery", "电芯", "中游", ["电芯", "锂离子电池"], ["磷酸铁锂电芯", "三元电芯"]),
    ("tev-cathode", "tev-battery", "正极材料", "上游", ["正极材料", "磷酸铁锂"], ["磷酸铁锂正极", "三元正极材料"]),
    ("tev-drive", None, "电驱系统", "中游", ["电驱动"], []),
    ("tev-motor", "tev-drive", "驱动电机", "中游", ["驱动电机", "永磁同步电机"], ["扁线电机"]),
    ("tev-chip", "tev-drive", "功率半导体", "上游", ["功率半导体", "IGBT"], ["碳化硅模块", "IGBT模块"]),
]

# (name, main products, business scope, province, city, status, capital 万元, employees, tags)
FIRMS = [
    (
        "合成锂电电芯科技有限公司",
        "磷酸铁锂电芯；三元电芯",
        "锂离子电池电芯研发、生产、销售",
        "江苏省",
        "常州市",
        "存续",
        50000,
        1200,
        ["高新技术企业"],
    ),
    (
        "合成动力电池系统有限公司",
        "动力电池包；电芯",
        "锂离子电池、动力电池系统制造",
        "江苏省",
        "苏州市",
        "存续",
        30000,
        800,
        ["专精特新"],
    ),
    ("合成储能电芯有限公司", "储能电芯；锂离子电池", "锂离子电池制造与销售", "广东省", "深圳市", "在业", 8000, 300, []),
    (
        "合成新能源电池有限公司",
        "三元电芯",
        "动力锂离子电池电芯生产",
        "福建省",
        "宁德市",
        "存续",
        120000,
        5000,
        ["上市"],
    ),
    ("合成已注销电芯有限公司", "磷酸铁锂电芯", "锂离子电池电芯生产", "江苏省", "无锡市", "注销", 1000, 20, []),
    (
        "合成正极材料股份有限公司",
        "磷酸铁锂正极；三元正极材料",
        "锂电池正极材料研发生产",
        "湖南省",
        "长沙市",
        "存续",
        20000,
        600,
        ["专精特新"],
    ),
    ("合成磷酸铁锂材料有限公司", "磷酸铁锂", "磷酸铁锂正极材料制造", "四川省", "遂宁市", "存续", 15000, 400, []),
    (
        "合成锂电材料科技有限公司",
        "三元正极材料；前驱体",
        "电池材料研发销售",
        "浙江省",
        "衢州市",
        "存续",
        9000,
        250,
        ["高新技术企业"],
    ),
    (
        "合成驱动电机有限公司",
        "扁线电机；驱动电机",
        "新能源汽车驱动电机制造",
        "上海市",
        "上海市",
        "存续",
        25000,
        900,
        ["专精特新"],
    ),
    ("合成永磁电机科技有限公司", "永磁同步电机", "永磁同步电机研发、生产", "浙江省", "宁波市", "存续", 6000, 200, []),
    ("合成电驱动系统有限公司", "电驱动总成；驱动电机", "电驱动系统集成", "江苏省", "常州市", "存续", 18000, 700, []),
    (
        "合成功率半导体有限公司",
        "IGBT模块；碳化硅模块",
        "功率半导体器件设计与制造",
        "江苏省",
        "无锡市",
        "存续",
        40000,
        1500,
        ["专精特新", "上市"],
    ),
    ("合成碳化硅器件有限公司", "碳化硅模块", "碳化硅功率器件研发", "广东省", "深圳市", "存续", 12000, 350, []),
    ("合成芯片设计有限公司", "IGBT芯片", "功率半导体芯片设计", "上海市", "上海市", "存续", 5000, 120, ["高新技术企业"]),
    ("合成餐饮管理有限公司", "团餐服务", "餐饮管理、食品销售", "江苏省", "常州市", "存续", 500, 80, []),
    ("合成物流运输有限公司", "公路货运", "道路货物运输、仓储服务", "江苏省", "苏州市", "存续", 2000, 150, []),
    ("合成纺织服装有限公司", "针织服装", "服装制造、纺织品销售", "浙江省", "绍兴市", "存续", 3000, 500, []),
    ("合成建筑工程有限公司", "房屋建筑施工", "建筑工程施工总承包", "山东省", "济南市", "存续", 10000, 900, []),
    ("合成软件信息有限公司", "企业管理软件", "软件开发、信息技术服务", "北京市", "北京市", "存续", 1000, 60, []),
    ("合成农业科技有限公司", "有机蔬菜", "蔬菜种植、农产品销售", "山东省", "潍坊市", "存续", 800, 40, []),
    ("合成德国电池有限公司", "锂离子电池电芯", "锂离子电池电芯制造", "", "", "存续", 60000, 2000, ["外资"]),
    ("合成化工原料有限公司", "碳酸锂", "化工原料销售、碳酸锂加工", "江西省", "宜春市", "存续", 7000, 180, []),
    ("合成电池回收有限公司", "废旧动力电池回收", "动力电池回收利用", "江苏省", "常州市", "存续", 4000, 90, []),
    ("合成汽车零部件有限公司", "汽车座椅", "汽车零部件制造", "江苏省", "常州市", "存续", 9000, 450, []),
    ("合成电机维修有限公司", "电机维修服务", "电机维修、机电设备销售", "江苏省", "常州市", "吊销", 100, 5, []),
    ("合成锂电设备有限公司", "电芯卷绕机", "锂电池生产设备制造", "广东省", "惠州市", "存续", 11000, 380, []),
    ("合成半导体材料有限公司", "碳化硅衬底", "半导体材料研发", "山东省", "济南市", "存续", 16000, 420, []),
    ("合成电控科技有限公司", "电机控制器", "电机控制器研发生产", "江苏省", "常州市", "存续", 7500, 260, []),
]
COUNTRY_OVERRIDES = {"合成德国电池有限公司": "德国"}
LOCAL = ["合成锂电电芯科技有限公司", "合成电驱动系统有限公司", "合成电控科技有限公司", "合成汽车零部件有限公司"]


def seed(session) -> dict[str, int]:
    """Write the chain, the cluster (city 常州市) with four local firms, and the firms; returns name → id."""
    chain = Chain(id=CHAIN_ID, name="测试新能源汽车", sector="新能源")
    session.add(chain)
    session.flush()
    version = ChainVersion(chain_id=CHAIN_ID, version=1, checksum="synthetic")
    session.add(version)
    session.flush()
    depth = {}
    for pos, (key, parent, name, stage, keywords, products) in enumerate(LINKS):
        depth[key] = 1 if parent is None else depth[parent] + 1
        session.add(
            ChainLink(
                version_id=version.id,
                key=key,
                parent_key=parent,
                stage=stage,
                depth=depth[key],
                position=pos,
                name=name,
                keywords=keywords,
                synonyms=[],
                products=products,
            )
        )
    chain.current_version_id = version.id
    ids = {}
    for name, products, scope, province, city, status, capital, employees, tags in FIRMS:
        ent = Enterprise(
            name=name,
            name_norm=name,
            main_products=products,
            business_scope=scope,
            province=province,
            city=city,
            status=status,
            capital_wan_cny=capital,
            employees=employees,
            country=COUNTRY_OVERRIDES.get(name, "中国"),
            is_synthetic=True,
            data_note="合成测试数据",
        )
        ent.tags = [EnterpriseTag(tag=t) for t in tags]
        session.add(ent)
        session.flush()
        ids[name] = ent.id
    cluster = Cluster(id=CLUSTER_ID, name="测试集聚区", province="江苏省", city="常州市", data_note="合成测试数据")
    cluster.chains = [ClusterChain(chain_id=CHAIN_ID, position=0)]
    session.add(cluster)
    session.flush()
    for name in LOCAL:
        session.add(RosterEntry(cluster_id=CLUSTER_ID, enterprise_id=ids[name], role="骨干"))
    session.commit()
    return ids


def build_indexed(app) -> dict[str, int]:
    """The seeded world with its index built and saved (as `chainmatch init` leaves it): name → id."""
    with app.app_context():
        ids = seed(db.session)
        matchsvc.sync(db.session, app)
    return ids


def copy_indexed(app, world_copy) -> dict[str, int]:
    """A copy of the session's `build_indexed` world in `app`, its saved index loaded: name → id."""
    return restore_indexed(app, world_copy, build_indexed)


@pytest.fixture
def seeded(app, world_copy):
    """The seeded world, indexed: name → id."""
    ids = copy_indexed(app, world_copy)
    with app.app_context():
        yield ids
