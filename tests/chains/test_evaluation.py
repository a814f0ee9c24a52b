"""Cluster evaluation rules at their boundaries, missing data, latest year, same-type counts."""

from __future__ import annotations

import pytest

from chains.cluster_models import Cluster, ClusterIndicator
from chains.evaluation import ALTERNATIVE_MET_NOTE, ALTERNATIVE_OPEN_NOTE, SQM_PER_MU, evaluate_cluster
from webapp.extensions import db


def add_cluster(cid: str, area_mu: float | None = 1000.0, indicators: list[dict] | None = None, **fields) -> Cluster:
    values = {
        "name": f"集聚区{cid}",
        "province": "山东省",
        "city": "青岛市",
        "leading_industry": "海洋高端装备",
        "cluster_type": "海洋高端装备",
    }
    values.update(fields)
    cluster = Cluster(id=cid, area_mu=area_mu, **values)
    db.session.add(cluster)
    for row in indicators or []:
        db.session.add(ClusterIndicator(cluster_id=cid, **row))
    db.session.commit()
    return cluster


def rule(cid: str, code: str):
    return evaluate_cluster(db.session, cid).rule(code)


def test_leading_concentration_boundaries(app):
    cases = [(5000, True, False), (4999, False, False), (7000, True, True), (6999.99, True, False)]
    with app.app_context():
        for n, (leading, passed, met) in enumerate(cases):  # 50 %, 49.99 %, 70 %, 69.9999 %
            add_cluster(
                f"c{n}", indicators=[{"year": 2024, "revenue": 10000, "leading_revenue": leading}], cluster_type=f"t{n}"
            )
            r = rule(f"c{n}", "leading_concentration")
            assert r.value == pytest.approx(leading / 100)
            assert (r.passed, r.met_target) == (passed, met), leading
            assert r.threshold == 50 and r.target == 70 and r.unit == "%"
            assert "山东" in r.source and r.explanation


def test_investment_intensity_boundaries(app):
    cases = [(280_000, True, False), (279_999, False, False), (350_000, True, True), (349_990, True, False)]
    with app.app_context():
        for n, (investment, passed, met) in enumerate(cases):
            add_cluster(f"c{n}", indicators=[{"year": 2024, "fixed_investment": investment}], cluster_type=f"t{n}")
            r = rule(f"c{n}", "investment_intensity")
            assert r.value == pytest.approx(investment / 1000) and (r.passed, r.met_target) == (passed, met)
            assert r.unit == "万元/亩"


def test_tax_per_mu_boundaries(app):
    cases = [(20_000, True, False), (19_999, False, False), (30_000, True, True), (29_999, True, False)]
    with app.app_context():
        for n, (tax, passed, met) in enumerate(cases):
            add_cluster(f"c{n}", indicators=[{"year": 2024, "tax": tax}], cluster_type=f"t{n}")
            r = rule(f"c{n}", "tax_per_mu")
            assert (r.passed, r.met_target) == (passed, met) and r.unit == "万元/亩·年"


def test_per_square_metre_alternatives(app):
    # 1 亩 = 666.67 m²: exactly 4500 元/m² of revenue and 200 元/m² of tax on 1000 亩.
    revenue = 4500 * SQM_PER_MU * 1000 / 10_000
    tax = 200 * SQM_PER_MU * 1000 / 10_000
    with app.app_context():
        add_cluster("c1", indicators=[{"year": 2024, "revenue": revenue, "tax": tax}])
        add_cluster(
            "c2",
            indicators=[{"year": 2024, "revenue": revenue * 0.999, "tax": tax * 0.999}],
            cluster_type="其他",
            city="烟台市",
        )
        ev = evaluate_cluster(db.session, "c1")
        assert ev.rule("revenue_per_sqm").value == pytest.approx(4500) and ev.rule("revenue_per_sqm").passed
        assert ev.rule("tax_per_sqm").value == pytest.approx(200) and ev.rule("tax_per_sqm").passed
        assert ev.rule("tax_per_mu").passed is False  # 13.3 万元/亩 < 20
        assert ev.rule("land_efficiency").passed is True  # any one alternative suffices
        ev2 = evaluate_cluster(db.session, "c2")
        assert ev2.rule("revenue_per_sqm").passed is False and ev2.rule("tax_per_sqm").passed is False
        assert ev2.rule("land_efficiency").passed is False
        # A failed alternative says whether it decides the verdict; passed rules and other rules say nothing.
        assert ev.alternative_note(ev.rule("tax_per_mu")) == ALTERNATIVE_MET_NOTE
        assert ev.alternative_note(ev.rule("tax_per_sqm")) == ""
        assert ev2.alternative_note(ev2.rule("tax_per_sqm")) == ALTERNATIVE_OPEN_NOTE
        assert all(ev2.alternative_note(r) == "" for r in ev2.rules if r.alternative_of is None)


def test_missing_data_gives_none_with_chinese_explanation(app):
    with app.app_context():
        add_cluster(
            "c1", area_mu=None, indicators=[{"year": 2024, "revenue": 100}], leading_industry="", cluster_type=""
        )
        ev = evaluate_cluster(db.session, "c1")
        for code in (
            "leading_concentration",
            "investment_intensity",
            "tax_per_mu",
            "revenue_per_sqm",
            "tax_per_sqm",
            "land_efficiency",
            "single_leading_industry",
            "same_type_per_province",
            "same_type_per_city",
        ):
            r = ev.rule(code)
            assert r.passed is None, code
            assert "无法" in r.explanation, code
        assert "面积" in ev.rule("tax_per_mu").explanation
        assert ev.passed is None
        add_cluster("c2")  # no indicators at all
        assert "缺少年度指标" in rule("c2", "leading_concentration").explanation


def test_latest_indicator_year_is_used(app):
    with app.app_context():
        add_cluster(
            "c1",
            indicators=[
                {"year": 2023, "revenue": 100, "leading_revenue": 90},
                {"year": 2024, "revenue": 100, "leading_revenue": 40},
            ],
        )
        ev = evaluate_cluster(db.session, "c1")
        assert ev.year == 2024 and ev.rule("leading_concentration").passed is False


def test_single_leading_industry(app):
    cases = [
        ("海洋高端装备", True),
        ("船舶及海洋工程装备", True),
        ("海洋装备、海洋化工", False),
        ("化工/新材料", False),
    ]
    with app.app_context():
        for n, (industry, passed) in enumerate(cases):
            add_cluster(f"c{n}", leading_industry=industry)
            assert rule(f"c{n}", "single_leading_industry").passed is passed, industry


def test_same_type_counts_per_city_and_province(app):
    with app.app_context():
        add_cluster("qd1", city="青岛市")
        assert rule("qd1", "same_type_per_city").passed is True
        add_cluster("qd2", city="青岛市")
        r = rule("qd1", "same_type_per_city")
        assert r.passed is False and r.value == 2 and "超过" in r.explanation
        add_cluster("yt1", city="烟台市")
        assert rule("yt1", "same_type_per_city").passed is True
        assert rule("yt1", "same_type_per_province").passed is True  # 3 in 山东省 is allowed
        assert rule("yt1", "same_type_per_province").value == 3
        add_cluster("wf1", city="潍坊市")
        assert rule("wf1", "same_type_per_province").passed is False  # the 4th
        add_cluster("js1", province="江苏省", city="南通市")
        assert rule("js1", "same_type_per_province").passed is True
        add_cluster("qd3", city="青岛市", cluster_type="现代海洋化工")
        assert rule("qd3", "same_type_per_city").passed is True


def test_every_rule_carries_fields(app):
    with app.app_context():
        add_cluster(
            "c1",
            indicators=[
                {"year": 2024, "revenue": 10000, "leading_revenue": 8000, "tax": 40000, "fixed_investment": 400000}
            ],
        )
        ev = evaluate_cluster(db.session, "c1")
        assert len({r.code for r in ev.rules}) == len(ev.rules) >= 8
        assert all(r.source and r.name and r.explanation for r in ev.rules)
        assert ev.passed is True
