"""A client session that uses only the API: import firms, find a gap, get candidates, create a lead, reach 签约."""

from __future__ import annotations

from tests.worlds.api import Api, make_token
from tests.worlds.chains import CHAIN_YAML
from webapp.extensions import db

# Synthetic firms (labelled 合成数据), as an integration script would send them.
FIRMS = [
    {
        "external_id": "syn-api-cell-1",
        "name": "合成高镍电芯有限公司",
        "province": "江苏省",
        "city": "常州市",
        "status": "存续",
        "main_products": "高镍电芯；三元电芯",
        "business_scope": "锂离子电池电芯研发、生产",
        "data_note": "合成数据",
    },
    {
        "external_id": "syn-api-cell-2",
        "name": "合成储能电芯科技有限公司",
        "province": "广东省",
        "city": "深圳市",
        "status": "存续",
        "main_products": "储能电芯",
        "business_scope": "电芯及电池模组制造",
        "data_note": "合成数据",
    },
    {
        "external_id": "syn-api-bms",
        "name": "合成电池管理系统有限公司",
        "province": "上海市",
        "city": "上海市",
        "status": "存续",
        "main_products": "电池管理系统；BMS",
        "business_scope": "电池管理系统研发",
        "data_note": "合成数据",
    },
    {
        "external_id": "syn-api-food",
        "name": "合成食品有限公司",
        "province": "山东省",
        "city": "青岛市",
        "status": "存续",
        "main_products": "速冻食品",
        "business_scope": "食品加工",
        "data_note": "合成数据",
    },
    {"name": "", "city": "青岛市"},  # rejected: no name
]


def test_api_only_session_from_import_to_signed_lead(app, client):
    from chains.cluster_models import Cluster, ClusterChain
    from webapp.services.match import wait_for_background

    admin = Api(client, make_token(app, "admin"))
    assert admin.post("/chains", json={"yaml": CHAIN_YAML}).status_code == 201
    with app.app_context():  # clusters are defined by files / models, not through the API
        cluster = Cluster(
            id="api-demo", name="接口演示集聚区", province="山东省", city="青岛市", data_note="合成测试数据"
        )
        cluster.chains = [ClusterChain(chain_id="tc", position=0)]
        db.session.add(cluster)
        db.session.commit()
    staff = Api(client, make_token(app, "staff", clusters=("api-demo",)))

    # 1. Import firms (staff may import, like the file import page); the row report names the rejected row.
    imported = staff.post("/enterprises/bulk", json={"rows": FIRMS, "source": "crm-sync"}).get_json()
    assert imported["counts"]["inserted"] == 4 and imported["counts"]["rejected"] == 1
    assert [r["line"] for r in imported["report"] if r["outcome"] == "rejected"] == [5]

    # 2. Find the gaps: with no local firms every leaf link is 空白; pick the 卡脖子 电芯 link.
    gaps = staff.get("/clusters/api-demo/gaps").get_json()["chains"][0]
    blank = [link for link in gaps["links"] if link["is_leaf"] and link["status"] == "空白"]
    target = next(link for link in blank if link["key_tech"])
    assert target["link_id"] == "tc-mid-a" and target["name"] == "电芯"

    # 3. Candidates for that gap, with reasons (keyword fallback while the index builds, then the full matcher).
    path = f"/clusters/api-demo/links/{target['link_id']}/candidates?k=3"
    page = staff.get(path).get_json()
    if page["state"] == "fallback":
        wait_for_background(app)
        page = staff.get(path).get_json()
    assert page["state"] == "ready"
    names = [c["name"] for c in page["items"]]
    assert set(names[:2]) == {"合成高镍电芯有限公司", "合成储能电芯科技有限公司"}
    best = page["items"][0]
    assert best["explanation"] and "电芯" in "".join(best["explanation"])

    # 4. Create a lead for the best candidate and move it through the pipeline to 签约.
    lead = staff.post(
        "/leads", json={"cluster_id": "api-demo", "enterprise_id": best["enterprise_id"], "link_key": target["link_id"]}
    )
    assert lead.status_code == 201
    lead_id = lead.get_json()["id"]
    for stage in ("已接洽", "实地考察", "洽谈", "签约"):
        response = staff.post(f"/leads/{lead_id}/stage", json={"stage": stage})
        assert response.status_code == 200 and response.get_json()["stage"] == stage
    detail = staff.get(f"/leads/{lead_id}").get_json()
    assert [e["new"] for e in detail["events"] if e["field"] == "stage"] == ["已接洽", "实地考察", "洽谈", "签约"]
    assert staff.get("/leads?stage=签约").get_json()["total"] == 1
    # Contacting a candidate fed the matcher's feedback; the lead is on the 招商目标企业清单.
    targets = staff.get("/clusters/api-demo/chains/tc/lists?list=targets").get_json()["lists"][0]["entries"]
    assert [e["enterprise_id"] for e in targets] == [best["enterprise_id"]]
