"""Cluster YAML import: upserts, roster firms by external id, link checks, errors with file and line."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chains.chainmap_io import import_chain_file
from chains.chainmap_parse import ChainMapError
from chains.cluster_io import import_cluster_file, import_cluster_path
from chains.cluster_models import Cluster, ClusterIndicator, LinkAssignment, RosterEntry
from chains.list_models import Project
from tests.worlds.chains import CHAIN_YAML, cluster_yaml, make_firms, write
from webapp.extensions import db

ROSTER = """\
- firm: demo-f1
  role: 龙头
  links: [tc-mid-a, tc-mid-c]
- firm: demo-f2
  role: 配套
  links: [tc-up-a]
- firm: demo-f3
"""
EXTRA = """\
chain_leader: demo-f1
gap_thresholds: {weak_max: 2, strong_min: 4}
indicators:
  - {year: 2023, revenue: 900, tax: 20, source: 示意值}
  - {year: 2024, output_value: 1200, revenue: 1000, tax: 30, fixed_investment: 300000, leading_revenue: 600}
projects:
  - {name: 高镍电芯项目, firm: demo-f1, link: tc-mid-a, investment: 50000, status: 在建, year: 2024}
"""


@pytest.fixture
def loaded(app, tmp_path):
    with app.app_context():
        import_chain_file(db.session, write(tmp_path, "tc.yaml", CHAIN_YAML))
        make_firms(db.session, 3)
    return app


def test_import_cluster_with_roster_indicators_projects(loaded, tmp_path):
    path = write(tmp_path, "tcl.yaml", cluster_yaml(roster=ROSTER, extra=EXTRA))
    with loaded.app_context():
        result = import_cluster_file(db.session, path)
        assert result.created and result.roster == 3 and result.assignments == 3 and result.projects == 1
        cluster = db.session.get(Cluster, "tcl")
        assert cluster.chain_ids == ["tc"] and cluster.is_demo and cluster.area_mu == 1000
        assert cluster.gap_thresholds == {"weak_max": 2, "strong_min": 4}
        roles = {r.enterprise.external_id: r.role for r in db.session.scalars(select(RosterEntry))}
        assert roles == {"demo-f1": "龙头", "demo-f2": "配套", "demo-f3": "配套"}
        links = {(a.enterprise.external_id, a.link_key) for a in db.session.scalars(select(LinkAssignment))}
        assert links == {("demo-f1", "tc-mid-a"), ("demo-f1", "tc-mid-c"), ("demo-f2", "tc-up-a")}
        assert all(a.confirmed and a.source == "manual" for a in db.session.scalars(select(LinkAssignment)))
        assert [i.year for i in cluster.indicators] == [2023, 2024]
        project = db.session.scalars(select(Project)).one()
        assert project.enterprise.external_id == "demo-f1" and project.link_key == "tc-mid-a"
        assert project.investment_wan == 50000


def test_reimport_is_idempotent_and_updates(loaded, tmp_path):
    path = write(tmp_path, "tcl.yaml", cluster_yaml(roster=ROSTER, extra=EXTRA))
    with loaded.app_context():
        import_cluster_file(db.session, path)
        again = import_cluster_file(db.session, path)
        assert not again.created
        counts = [
            db.session.scalar(select(func.count()).select_from(m))
            for m in (RosterEntry, LinkAssignment, ClusterIndicator, Project, Cluster)
        ]
        assert counts == [3, 3, 2, 1, 1]
        write(
            tmp_path,
            "tcl.yaml",
            cluster_yaml(roster=ROSTER.replace("role: 配套", "role: 骨干"), extra=EXTRA, name="改名后的集聚区"),
        )
        import_cluster_file(db.session, path)
        db.session.expire_all()
        assert db.session.get(Cluster, "tcl").name == "改名后的集聚区"
        f2 = db.session.scalars(select(RosterEntry).join(RosterEntry.enterprise)).all()
        assert {r.enterprise.external_id: r.role for r in f2}["demo-f2"] == "骨干"


def test_unknown_firm_is_an_error_with_line(loaded, tmp_path):
    roster = ROSTER + "- firm: demo-nobody\n  role: 配套\n"
    path = write(tmp_path, "tcl.yaml", cluster_yaml(roster=roster))
    with loaded.app_context():
        with pytest.raises(ChainMapError) as info:
            import_cluster_file(db.session, path)
        ((file, line, message),) = info.value.errors
        text = path.read_text(encoding="utf-8").splitlines()
        assert file == str(path) and "demo-nobody" in text[line - 1] and "demo-nobody" in message
        assert db.session.get(Cluster, "tcl") is None  # nothing half-loaded
        assert db.session.scalar(select(func.count(RosterEntry.id))) == 0


def test_link_must_belong_to_cluster_chains(loaded, tmp_path):
    roster = "- firm: demo-f1\n  links: [tc-up-a, other-link]\n"
    path = write(tmp_path, "tcl.yaml", cluster_yaml(roster=roster))
    with loaded.app_context():
        with pytest.raises(ChainMapError) as info:
            import_cluster_file(db.session, path)
        ((file, line, message),) = info.value.errors
        assert "other-link" in message and "other-link" in path.read_text(encoding="utf-8").splitlines()[line - 1]


def test_unknown_chain_unknown_key_and_bad_role(loaded, tmp_path):
    text = cluster_yaml(chains="[tc, nope]", roster="- firm: demo-f1\n  role: 老大\n", extra="colour: red\n")
    path = write(tmp_path, "tcl.yaml", text)
    with loaded.app_context():
        with pytest.raises(ChainMapError) as info:
            import_cluster_file(db.session, path)
        messages = " | ".join(m for _, _, m in info.value.errors)
        assert "nope" in messages and "老大" in messages and "colour" in messages
        assert all(line for _, line, _ in info.value.errors)


def test_folder_import_per_file(loaded, tmp_path):
    folder = tmp_path / "clusters"
    folder.mkdir()
    write(folder, "a.yaml", cluster_yaml("ca", roster=ROSTER))
    write(folder, "b.yaml", cluster_yaml("cb", roster="- firm: demo-missing\n"))
    with loaded.app_context():
        results, errors = import_cluster_path(db.session, folder)
        assert [r.cluster_id for r in results] == ["ca"]
        assert len(errors) == 1 and errors[0][0].endswith("b.yaml")
