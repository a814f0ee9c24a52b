"""候选企业 filters 排除省份 / 排除城市: offered in the form, resolved in SQL, applied to the ranked list."""

from __future__ import annotations

import re

import pytest

from chains.enterprise_models import Enterprise
from tests.worlds.candidates import CLUSTER, STEEL, copy_seeded
from webapp.extensions import db
from webapp.services.match import CandidateFilters

URL = f"/candidates/{CLUSTER}/{STEEL}"
BASE = {"f": "1", "active_only": "1", "exclude_cluster_firms": "1"}


@pytest.fixture
def world(app, world_copy):
    ids = copy_seeded(app, world_copy)
    with app.app_context():  # a firm with no region at all: an excluded region must not drop it
        firm = Enterprise(
            name="无地区船板公司",
            name_norm="无地区船板公司",
            external_id="t-noregion",
            province=None,
            city=None,
            main_products="船用钢板 高强度船板",
            business_scope="船用钢板",
            status="存续",
            is_synthetic=True,
            data_note="合成测试数据",
        )
        db.session.add(firm)
        db.session.commit()
        ids["noregion"] = firm.id
    return ids


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="cand-(\d+)"', html)]


def _all_ids(client, query_string: dict) -> set[int]:
    """Every candidate over all pages: whether a filter keeps a firm must not depend on where it ranks."""
    ids: set[int] = set()
    for page in range(1, 4):
        html = client.get(URL, query_string={**query_string, "page": str(page)}).get_data(as_text=True)
        ids |= set(_ids(html))
        if "下一页" not in html:
            return ids
    return ids


def test_filter_parses_exclusion_lists():
    filters = CandidateFilters.from_mapping({"exclude_provinces": "山东省，江苏省", "exclude_cities": ["青岛市"]})
    assert filters.exclude_provinces == ("山东省", "江苏省") and filters.exclude_cities == ("青岛市",)
    assert filters.as_dict()["exclude_provinces"] == ["山东省", "江苏省"]


def test_exclude_fields_are_shown_and_applied(client, auth, world):
    auth.login_as("staff", clusters=(CLUSTER,))
    page = client.get(URL).get_data(as_text=True)
    assert 'name="exclude_provinces"' in page and 'name="exclude_cities"' in page
    assert "省份（排除）" in page and "城市（排除）" in page
    everyone = _all_ids(client, {})
    shandong = {world["province"], world["city"], world["weak_local"]}
    assert shandong <= everyone and world["noregion"] in everyone

    response = client.get(URL, query_string={**BASE, "exclude_provinces": "山东省"})
    html = response.get_data(as_text=True)
    ids = _all_ids(client, {**BASE, "exclude_provinces": "山东省"})
    assert response.status_code == 200
    assert not ids & shandong
    assert {world["far"], world["foreign"], world["noregion"]} <= ids  # other provinces, none at all
    assert re.search(r'name="exclude_provinces" value="山东省"', html)  # the form keeps what was asked

    ids = _all_ids(client, {**BASE, "exclude_cities": "青岛市、南通市"})
    assert world["city"] not in ids and world["weak_local"] not in ids and world["far"] not in ids
    assert world["province"] in ids and world["noregion"] in ids  # 济南 stays
    # Both together, next to an inclusion list.
    ids = set(
        _ids(
            client.get(URL, query_string={**BASE, "provinces": "山东省", "exclude_cities": "青岛市"}).get_data(
                as_text=True
            )
        )
    )
    assert ids == {world["province"]}
