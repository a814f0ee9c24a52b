"""Gap analysis: status thresholds (boundaries, per-cluster overrides), roll-ups, 本地配套率."""

from __future__ import annotations

import pytest

from chains.chainmap_io import import_chain_file
from chains.cluster_io import import_cluster_file
from chains.cluster_models import Cluster, LinkAssignment
from chains.enterprise_models import Enterprise
from chains.gaps import (
    DEFAULT_STRONG_MIN,
    DEFAULT_WEAK_MAX,
    KEY_TECH_WEIGHT,
    Thresholds,
    analyze_chain,
    analyze_cluster,
    link_status,
)
from tests.worlds.chains import CHAIN_YAML, cluster_yaml, make_firms, write
from webapp.extensions import db

# up-a: f1 | mid-a (卡脖子): f2 f3 | mid-b: f4 f5 f6 | down: f7 (龙头) | up-b, mid-c: nobody
ROSTER = """\
- {firm: demo-f1, links: [tc-up-a]}
- {firm: demo-f2, links: [tc-mid-a]}
- {firm: demo-f3, links: [tc-mid-a]}
- {firm: demo-f4, links: [tc-mid-b]}
- {firm: demo-f5, links: [tc-mid-b]}
- {firm: demo-f6, links: [tc-mid-b]}
- {firm: demo-f7, role: 龙头, links: [tc-down]}
"""


def setup_cluster(app, tmp_path, extra: str = "") -> None:
    with app.app_context():
        import_chain_file(db.session, write(tmp_path, "tc.yaml", CHAIN_YAML))
        firms = make_firms(db.session, 7)
        firms[5].revenue_wan = None  # f6: revenue unknown
        db.session.commit()
        import_cluster_file(db.session, write(tmp_path, "tcl.yaml", cluster_yaml(roster=ROSTER, extra=extra)))


@pytest.mark.parametrize(
    "count,leader,expected",
    [
        (0, False, "空白"),
        (1, False, "薄弱"),
        (2, False, "一般"),
        (3, False, "优势"),
        (10, False, "优势"),
        (1, True, "优势"),
        (2, True, "优势"),
    ],
)
def test_status_boundaries_with_defaults(count, leader, expected):
    assert (DEFAULT_WEAK_MAX, DEFAULT_STRONG_MIN) == (1, 3)
    assert link_status(count, leader) == expected


@pytest.mark.parametrize("count,expected", [(0, "空白"), (2, "薄弱"), (3, "一般"), (4, "一般"), (5, "优势")])
def test_status_boundaries_with_other_thresholds(count, expected):
    assert link_status(count, False, Thresholds(weak_max=2, strong_min=5)) == expected


def test_statuses_rollups_and_local_rate(app, tmp_path):
    setup_cluster(app, tmp_path)
    with app.app_context():
        gap = analyze_chain(db.session, "tcl", "tc")
        status = {link.link_id: link.status for link in gap.links}
        assert status == {
            "tc-up": "薄弱",
            "tc-up-a": "薄弱",
            "tc-up-b": "空白",
            "tc-mid": "优势",
            "tc-mid-a": "一般",
            "tc-mid-b": "优势",
            "tc-mid-c": "空白",
            "tc-down": "优势",
        }
        mid = gap.link("tc-mid")
        assert mid.firm_count == 5 and mid.direct_firm_count == 0 and not mid.is_leaf
        mid_b = gap.link("tc-mid-b")
        assert mid_b.revenue_wan == 2000 and mid_b.revenue_known == 2  # f6 revenue unknown
        assert gap.link("tc-down").has_leader

        r = gap.rollup
        assert r.links == 8 and r.leaf_links == 6 and r.covered_leaf_links == 4
        assert r.counts == {"空白": 2, "薄弱": 2, "一般": 1, "优势": 3}
        assert r.leaf_counts == {"空白": 2, "薄弱": 1, "一般": 1, "优势": 2}
        assert r.local_rate == pytest.approx(4 / 6)
        # weights: mid-a is 卡脖子 (×2); scores 薄弱 0.5, 一般/优势 1, 空白 0
        expected = (0.5 + 0 + KEY_TECH_WEIGHT * 1 + 1 + 0 + 1) / (5 + KEY_TECH_WEIGHT)
        assert r.weighted_local_rate == pytest.approx(expected)
        assert r.firms == 7 and r.revenue_wan == 6000

        up, midstage, down = gap.stages["上游"], gap.stages["中游"], gap.stages["下游"]
        assert (up.links, up.leaf_links, up.covered_leaf_links, up.local_rate) == (3, 2, 1, 0.5)
        assert (midstage.links, midstage.leaf_links, midstage.covered_leaf_links) == (4, 3, 2)
        assert midstage.counts["优势"] == 2 and midstage.counts["空白"] == 1
        assert (down.leaf_links, down.local_rate) == (1, 1.0)


def test_cluster_threshold_overrides(app, tmp_path):
    setup_cluster(app, tmp_path, extra="gap_thresholds: {weak_max: 2, strong_min: 4}\n")
    with app.app_context():
        gap = analyze_chain(db.session, "tcl", "tc")
        assert gap.thresholds == Thresholds(2, 4)
        assert gap.link("tc-mid-a").status == "薄弱"  # 2 firms ≤ weak_max 2
        assert gap.link("tc-mid-b").status == "一般"  # 3 firms < strong_min 4
        assert gap.link("tc-mid").status == "优势"  # 5 firms
        assert gap.link("tc-down").status == "优势"  # a 龙头 is enough whatever the counts
        cluster = db.session.get(Cluster, "tcl")
        cluster.gap_thresholds = {}
        db.session.commit()
        assert analyze_chain(db.session, "tcl", "tc").link("tc-mid-a").status == "一般"


def test_firm_counts_once_per_ancestor_and_unconfirmed_is_ignored(app, tmp_path):
    setup_cluster(app, tmp_path)
    with app.app_context():
        f1 = db.session.query(Enterprise).filter_by(external_id="demo-f1").one()
        f2 = db.session.query(Enterprise).filter_by(external_id="demo-f2").one()
        db.session.add_all(
            [
                LinkAssignment(cluster_id="tcl", enterprise_id=f1.id, chain_id="tc", link_key="tc-up-b"),  # 2nd child
                LinkAssignment(cluster_id="tcl", enterprise_id=f1.id, chain_id="tc", link_key="tc-up"),  # parent
                LinkAssignment(
                    cluster_id="tcl",
                    enterprise_id=f2.id,
                    chain_id="tc",
                    link_key="tc-mid-c",
                    source="suggested",
                    confirmed=False,
                ),
            ]
        )
        db.session.commit()
        gap = analyze_chain(db.session, "tcl", "tc")
        assert gap.link("tc-up").firm_count == 1 and gap.link("tc-up").direct_firm_count == 1
        assert gap.link("tc-up-b").status == "薄弱"
        assert gap.link("tc-mid-c").status == "空白"  # suggestion not confirmed


def test_analyze_cluster_all_and_one_chain(app, tmp_path):
    setup_cluster(app, tmp_path)
    with app.app_context():
        assert [g.chain_id for g in analyze_cluster(db.session, "tcl")] == ["tc"]
        with pytest.raises(KeyError):
            analyze_cluster(db.session, "tcl", "other")
