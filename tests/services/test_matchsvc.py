"""Matching service on a real database (both backends), real engine, real faiss: index life cycle and candidates."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from chains.cluster_models import LinkAssignment
from chains.enterprise_models import Enterprise
from chains.feedback_models import CandidateFeedback
from tests.worlds.match_seed import CLUSTER_ID, LOCAL, seeded  # noqa: F401 - seeded is a fixture
from webapp.extensions import db
from webapp.services import match as matchsvc
from webapp.services.match import engine_state, index_files, store


def _names(page) -> list[str]:
    return [c.name for c in page.items]


def test_build_saves_index_with_metadata(app, seeded):
    info = matchsvc.active_embedder_info(app, db.session)
    assert info["embedder"].startswith("builtin-")
    assert info["count"] == len(seeded) and info["stale"] is False and info["status"] == "ready"
    folder = Path(info["folder"])
    meta = json.loads((folder / index_files.META_FILE).read_text(encoding="utf-8"))
    assert meta["embedder"] == info["embedder"] and meta["database_id"]
    assert meta["watermark"]["count"] == len(seeded)
    assert (folder / index_files.ENGINE_DIR / "vectors.faiss").exists()
    # A fresh process (empty cache) loads the saved index instead of rebuilding it.
    app.extensions.pop(engine_state.EXTENSION_KEY)
    assert matchsvc.sync(db.session, app).rebuilt is False
    assert store.state_of(app).meta["built_at"] == meta["built_at"]


def test_a_restarted_worker_warms_the_saved_engine_it_loads(app, seeded, caplog):
    """A worker loading the saved engine reads its memory-mapped files into the page cache on a thread of its own
    (the first searches after a restart would otherwise read them from disk page by page)."""

    def warmed_up() -> None:
        for thread in threading.enumerate():
            if thread.name == "engine-warm-up":
                thread.join(timeout=60)

    matchsvc.sync(db.session, app)
    warmed_up()
    app.extensions.pop(engine_state.EXTENSION_KEY)
    caplog.set_level(logging.INFO, logger="matching.engine.facade")
    caplog.clear()
    assert matchsvc.sync(db.session, app).rebuilt is False
    warmed_up()
    warmed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("engine warmed up")]
    assert len(warmed) == 1
    files = int(re.search(r"of (\d+) mapped files read", warmed[0]).group(1))
    assert files >= 6  # the word and character BM25 matrices at least, as the web workers map them


def test_candidates_rank_link_firms_with_explanations(app, seeded):
    page = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=5)
    assert page.state == "ready" and page.embedder.startswith("builtin-")
    names = _names(page)
    assert names[0] in {
        "合成新能源电池有限公司",
        "合成储能电芯有限公司",
        "合成动力电池系统有限公司",
        "合成德国电池有限公司",
    }
    top = page.items[0]
    assert top.rank == 1 and top.score >= page.items[-1].score
    assert set(top.channels) >= {"bm25", "char"}
    assert top.matched_terms
    assert any(p in ("电芯", "锂离子电池", "三元电芯", "磷酸铁锂电芯") for p in top.matched_products)
    assert top.best_link is not None and top.best_link.key == "tev-cell"
    assert top.similar_local["name"] == "合成锂电电芯科技有限公司"  # the local cell maker
    assert top.explanation and any("最契合环节" in r for r in top.explanation)
    # A chip firm's best link is the chip link even when listed for the motor link.
    chips = matchsvc.candidates(db.session, CLUSTER_ID, "tev-chip", {}, k=3)
    assert chips.items[0].best_link.key == "tev-chip"
    # Paging continues the ranking.
    second = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=2, offset=2)
    assert [c.name for c in second.items] == names[2:4] and second.items[0].rank == 3


def test_filters(app, seeded):
    def names(**filters):
        return _names(matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", filters, k=30))

    default = names()
    assert "合成锂电电芯科技有限公司" not in default  # already in the cluster
    assert "合成已注销电芯有限公司" not in default  # 注销
    assert "合成锂电电芯科技有限公司" in names(exclude_cluster_firms=False)
    assert "合成已注销电芯有限公司" in names(active_only=False)
    by_name = {e.name: e for e in db.session.scalars(select(Enterprise))}
    for name in names(exclude_cluster_city=True):
        assert by_name[name].city != "常州市"
    for name in names(exclude_cluster_province=True):
        assert by_name[name].province != "江苏省"
    assert set(names(provinces="广东省,福建省")) >= {"合成储能电芯有限公司", "合成新能源电池有限公司"}
    assert all(by_name[n].province in ("广东省", "福建省") for n in names(provinces=["广东省", "福建省"]))
    assert all(by_name[n].city == "深圳市" for n in names(cities=["深圳市"]))
    assert names(countries=["德国"]) == ["合成德国电池有限公司"]
    tagged = names(tags=["上市", "外资"])
    assert set(tagged) == {"合成新能源电池有限公司", "合成功率半导体有限公司", "合成德国电池有限公司"} & set(
        default
    ) | ({"合成功率半导体有限公司"} & set(tagged))
    assert all({t.tag for t in by_name[n].tags} & {"上市", "外资"} for n in tagged)
    assert all(10000 <= by_name[n].capital_wan_cny <= 60000 for n in names(capital_min=10000, capital_max=60000))
    assert all(by_name[n].employees >= 1000 for n in names(employees_min=1000))
    assert all(by_name[n].employees <= 300 for n in names(employees_max=300))


def test_filters_as_vector_fields_pass_the_firms_sql_passes(app, seeded):
    """CandidateFilters written over the fields stored with each vector (the Milvus scalar filter) let through
    exactly the firms the SQL conditions do; capital and employee ranges stay id lists."""
    from sqlalchemy import and_

    from chains.cluster_models import Cluster
    from matching.vectors.filters import mask
    from webapp.services.match.filters import (
        CandidateFilters,
        conditions,
        field_filter,
        vector_fields,
    )

    cluster = db.session.get(Cluster, CLUSTER_ID)
    firms = list(db.session.scalars(select(Enterprise).order_by(Enterprise.id)))
    ids = [e.id for e in firms]
    columns = vector_fields(firms)
    cases = [
        {},
        {"active_only": False},
        {"exclude_cluster_city": True},
        {"exclude_cluster_province": True},
        {"provinces": "广东省,福建省"},
        {"provinces": ["广东省"], "cities": ["常州市"]},
        {"countries": ["德国"]},
        {"tags": ["上市", "外资"]},
        {"exclude_provinces": ["江苏省"], "exclude_cities": ["深圳市"]},
        {"provinces": ["江苏省"], "tags": ["上市"], "exclude_cluster_city": True, "active_only": False},
    ]
    for case in cases:
        filters = CandidateFilters.from_mapping(case)
        conds = conditions(filters, cluster)
        want = set(db.session.scalars(select(Enterprise.id).where(and_(*conds)))) if conds else set(ids)
        flt = field_filter(filters, cluster)
        got = {i for i, ok in zip(ids, mask(flt, columns, len(ids))) if ok}
        assert got == want, case
    assert field_filter(CandidateFilters.from_mapping({"capital_min": 1000}), cluster) is None


def test_incremental_insert_update_delete_without_rebuild(app, seeded):
    built_at = store.state_of(app).meta["built_at"]
    new = Enterprise(
        name="合成固态电芯新秀有限公司",
        name_norm="x",
        main_products="固态电芯；锂离子电池电芯",
        business_scope="固态锂离子电池电芯研发生产",
        province="安徽省",
        city="合肥市",
        status="存续",
    )
    db.session.add(new)
    cathode = db.session.get(Enterprise, seeded["合成磷酸铁锂材料有限公司"])
    cathode.main_products = "碳化硅模块；IGBT模块"  # now a chip firm
    cathode.business_scope = "功率半导体模块封装"
    gone = db.session.get(Enterprise, seeded["合成储能电芯有限公司"])
    db.session.delete(gone)
    db.session.commit()
    result = matchsvc.sync(db.session, app)
    assert not result.rebuilt and result.removed == 1 and result.added >= 2
    assert store.state_of(app).meta["built_at"] == built_at
    cells = _names(matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=6))
    assert "合成固态电芯新秀有限公司" in cells and "合成储能电芯有限公司" not in cells
    chips = _names(matchsvc.candidates(db.session, CLUSTER_ID, "tev-chip", {}, k=4))
    assert "合成磷酸铁锂材料有限公司" in chips
    # Its name still says 磷酸铁锂材料, but its products no longer do: the cathode makers now rank above it.
    cathode = _names(matchsvc.candidates(db.session, CLUSTER_ID, "tev-cathode", {}, k=3))
    assert set(cathode[:2]) == {"合成正极材料股份有限公司", "合成锂电材料科技有限公司"}
    assert matchsvc.active_embedder_info(app, db.session)["stale"] is False


def test_rebuild_on_corrupt_file_and_other_embedder(app, seeded, tmp_path):
    folder = Path(matchsvc.active_embedder_info(app)["folder"])
    (folder / index_files.ENGINE_DIR / "vectors.faiss").write_bytes(b"broken")
    app.extensions.pop(engine_state.EXTENSION_KEY)
    result = matchsvc.sync(db.session, app)
    assert result.rebuilt and "unreadable" in result.reason
    assert matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=3).items
    # Metadata naming another embedder (e.g. an index folder copied from another setup) is not trusted.
    meta_file = folder / index_files.META_FILE
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta_file.write_text(json.dumps({**meta, "embedder": "st:/somewhere/else"}), encoding="utf-8")
    app.extensions.pop(engine_state.EXTENSION_KEY)
    assert matchsvc.sync(db.session, app).rebuilt
    # Metadata from another database is not trusted either.
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta_file.write_text(json.dumps({**meta, "database_id": "another-database"}), encoding="utf-8")
    app.extensions.pop(engine_state.EXTENSION_KEY)
    result = matchsvc.sync(db.session, app)
    assert result.rebuilt and "database_id" in result.reason


@pytest.mark.parametrize("backend", ["numpy", "milvus"])
def test_changing_the_vector_backend_rebuilds_on_the_configured_one(app, seeded, monkeypatch, backend):
    from matching.vectors import make_vector_index

    kind = type(make_vector_index(1, 4, backend=backend))
    before = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=5)
    monkeypatch.setitem(app.config, "VECTOR_BACKEND", backend)
    app.extensions.pop(engine_state.EXTENSION_KEY)
    result = matchsvc.sync(db.session, app)
    assert result.rebuilt and "vector backend" in result.reason
    assert isinstance(store.state_of(app).engine.vector_index, kind)
    after = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=5)
    assert [c.enterprise_id for c in after.items] == [c.enterprise_id for c in before.items]
    app.extensions.pop(engine_state.EXTENSION_KEY)  # a restarted worker loads the saved engine on that backend as it is
    assert matchsvc.sync(db.session, app).rebuilt is False
    assert isinstance(store.state_of(app).engine.vector_index, kind)


def test_placement_suggestions_stay_unconfirmed_until_confirmed(app, seeded):
    suggestions = matchsvc.place_roster(db.session, CLUSTER_ID, user_id=None)
    db.session.commit()
    by_firm = {}
    for s in suggestions:
        by_firm.setdefault(s.enterprise_id, []).append(s)
    cell_maker = seeded["合成锂电电芯科技有限公司"]
    assert by_firm[cell_maker][0].link_key == "tev-cell"
    assert 0 < by_firm[cell_maker][0].confidence <= 1
    controller = seeded["合成电驱动系统有限公司"]
    assert by_firm[controller][0].link_key == "tev-motor"
    rows = db.session.scalars(select(LinkAssignment)).all()
    assert rows and all(r.source == "suggested" and not r.confirmed for r in rows)
    # Running again does not duplicate: every roster firm with a suggestion counts as placed.
    assert matchsvc.place_roster(db.session, CLUSTER_ID) == [] or all(
        s.enterprise_id not in by_firm for s in matchsvc.place_roster(db.session, CLUSTER_ID)
    )
    assert matchsvc.confirm_assignments(db.session, [by_firm[cell_maker][0].assignment_id]) == 1
    db.session.commit()
    confirmed = db.session.get(LinkAssignment, by_firm[cell_maker][0].assignment_id)
    assert confirmed.confirmed
    assert sum(1 for r in db.session.scalars(select(LinkAssignment)) if r.confirmed) == 1


def test_look_alikes(app, seeded):
    alikes = matchsvc.look_alikes(db.session, seeded["合成功率半导体有限公司"], k=3)
    names = [a.name for a in alikes]
    assert "合成功率半导体有限公司" not in names
    assert names[0] in {"合成碳化硅器件有限公司", "合成芯片设计有限公司"}
    with pytest.raises(matchsvc.MatchError):
        matchsvc.look_alikes(db.session, 10**9)


def test_feedback_recording_and_relearn_adoption(app, seeded):
    row = matchsvc.record_feedback(
        db.session, CLUSTER_ID, "tev-cell", seeded["合成新能源电池有限公司"], "relevant", None
    )
    matchsvc.record_feedback(db.session, CLUSTER_ID, "tev-cell", seeded["合成电池回收有限公司"], "not_relevant", None)
    db.session.commit()
    assert db.session.get(CandidateFeedback, row.id).label == "relevant"
    with pytest.raises(ValueError):
        matchsvc.record_feedback(db.session, CLUSTER_ID, "tev-cell", seeded["合成新能源电池有限公司"], "maybe", None)
    # One labelled link is far too little to learn from: nothing is adopted, the figures are recorded.
    learned = matchsvc.relearn(db.session, app)
    db.session.commit()
    assert learned.adopted is False and learned.queries == 1 and learned.positives == 1 and learned.negatives == 1
    assert learned.note
    assert store.state_of(app).engine.learned is None


def test_one_table_of_filter_fields_reaches_the_form_the_api_and_the_cli():
    """Every CandidateFilters field is in the one table, and the form, the API's query schema and `chainmatch match`
    all offer each of them under the table's names (a field added to the table appears in all three)."""
    from dataclasses import fields

    from webapp.api.schemas_matching import CandidateFilterQuery
    from webapp.candidates.filters import parse_filters
    from webapp.cli.match import match_command
    from webapp.services.match.filter_fields import FILTER_FIELDS, public_values
    from webapp.services.match.filters import CandidateFilters

    assert {f.name for f in FILTER_FIELDS} == {f.name for f in fields(CandidateFilters)}
    api_names = set(CandidateFilterQuery().fields)
    cli_names = {opt for p in match_command.params for opt in getattr(p, "opts", [])}
    form = parse_filters({"f": "1"})
    for f in FILTER_FIELDS:
        assert f.api in api_names and f.cli in cli_names and f.name in form.values
    # The inverted public flags state the opposite of the field; a false or absent flag keeps the default.
    assert public_values({"any_status": True, "include_cluster_firms": True}, "api") == {
        "active_only": False,
        "exclude_cluster_firms": False,
    }
    assert public_values({"any_status": False, "province": ["山东省"]}, "api") == {"provinces": ("山东省",)}
    assert public_values({"exclude_cities": ("青岛市",), "employees_min": 50}, "cli") == {
        "exclude_cities": ("青岛市",),
        "employees_min": 50,
    }


def test_form_checks_the_ranges_of_capital_and_employees():
    from webapp.candidates.filters import parse_filters

    form = parse_filters({"f": "1", "capital_min": "500", "capital_max": "100", "employees_min": "x"})
    assert "注册资本下限不能大于上限" in form.errors
    assert any(e.startswith("参保人数下限") for e in form.errors)
    ok = parse_filters({"f": "1", "employees_min": "10", "employees_max": "200", "exclude_cities": "青岛市，烟台市"})
    assert not ok.errors
    filters = ok.service_filters()
    assert (filters.employees_min, filters.employees_max, filters.exclude_cities) == (10, 200, ("青岛市", "烟台市"))
