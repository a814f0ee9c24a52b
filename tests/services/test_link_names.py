"""`resolve_link`: how a link typed by a user (key or name) is found among a cluster's chains."""

from __future__ import annotations

import pytest

from chains.cluster_models import Cluster
from webapp.services.match.linkcache import LinkView
from webapp.services.match.links import LinkSet, resolve_link
from webapp.services.match.results import MatchError


def _link(chain_id: str, key: str, name: str) -> LinkView:
    return LinkView(
        id=0, version_id=0, chain_id=chain_id, key=key, parent_key=None, stage="中游", depth=0, position=0, name=name,
        description="", keywords=(), synonyms=(), products=(), industry_codes=(), key_tech=False, key_tech_note="",
    )  # fmt: skip


LINKS = LinkSet(
    views={},
    links={
        link.key: link
        for link in (
            _link("nev", "nev-cell", "电芯"),
            _link("storage", "storage-cell", "电芯"),
            _link("nev", "nev-motor", "驱动电机"),
        )
    },
)
CLUSTER = Cluster(id="c", name="测试集聚区")


def test_a_key_or_a_unique_name_gives_the_key():
    assert resolve_link(LINKS, CLUSTER, "nev-cell") == "nev-cell"
    assert resolve_link(LINKS, CLUSTER, " 驱动电机 ") == "nev-motor"


def test_a_name_two_chains_share_asks_for_the_key():
    with pytest.raises(MatchError, match="多个名为“电芯”的环节") as raised:
        resolve_link(LINKS, CLUSTER, "电芯")
    assert "nev-cell" in str(raised.value) and "storage-cell" in str(raised.value)


def test_unknown_text_names_no_link_unless_one_contains_it():
    with pytest.raises(MatchError) as raised:
        resolve_link(LINKS, CLUSTER, "正极材料")
    assert "不属于集聚区 测试集聚区" in str(raised.value) and "名称相近" not in str(raised.value)
    with pytest.raises(MatchError, match="驱动电机（nev-motor）"):
        resolve_link(LINKS, CLUSTER, "电机")
