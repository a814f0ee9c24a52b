"""Product filters reaching Milvus as scalar filters on the fields stored with each vector (issue 15, part 3): the
engine ranks a FieldFilter search on Milvus exactly as an id-list search on Milvus and on faiss; a firm that moves
province has its stored fields rewritten; the web service's candidates on milvus equal those on faiss. Real
milvus-lite (embedded), small pools, the built-in LSA embedder."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from matching.embedders import BuiltinEmbedder
from matching.engine import Document, MatchEngine
from matching.engine import channels as engine_channels
from matching.engine import dense as engine_dense
from matching.engine import ranking as engine_ranking
from matching.fusion import FusionWeights
from matching.vectors import FieldFilter, MilvusIndex, condition
from matching.vectors.filters import mask
from tests.worlds.match_seed import CLUSTER_ID, seeded  # noqa: F401 - seeded is a fixture

PROVINCES = ("山东省", "江苏省", "广东省", "浙江省")
CITIES = {"山东省": ("济南市", "青岛市"), "江苏省": ("苏州市", "常州市"), "广东省": ("深圳市",), "浙江省": ("宁波市",)}
STATUSES = ("存续", "在业", "注销")
TAGS = ("上市", "外资", "专精特新")
PRODUCTS = (
    "锂电池正极材料",
    "磷酸铁锂电芯",
    "湿法隔膜",
    "船用柴油机",
    "单晶硅片",
    "车载芯片",
    "钻井平台",
    "动力电池回收",
    "整车制造",
    "功率半导体",
    "电解液",
    "储能系统",
    "光伏逆变器",
    "碳纤维复合材料",
)
QUERIES = ("磷酸铁锂 电芯 正极材料", "功率半导体 车载芯片", "光伏 单晶硅片 逆变器")
WEIGHTS = FusionWeights(dense=0.8)  # the dense channel weighted, so its candidate search takes part


def _pool(n: int = 90) -> list[Document]:
    rng = np.random.default_rng(7)
    docs = []
    for i in range(n):
        products = [PRODUCTS[j] for j in rng.choice(len(PRODUCTS), 3, replace=False)]
        province = PROVINCES[i % len(PROVINCES)]
        fields = {
            "province": province,
            "city": CITIES[province][i // 4 % len(CITIES[province])],
            "status": STATUSES[i % 7 % 3],
            "tags": sorted(TAGS[j] for j in range(3) if rng.random() < 0.3),
        }
        docs.append(
            Document(
                i + 1,
                f"合成企业{i}号",
                f"合成企业{i}号 主营 {' '.join(products)} 编号{i}",
                " ".join(products),
                fields=fields,
            )
        )
    return docs


@pytest.fixture
def pruned(monkeypatch):
    """Search as pools above the statistics sample do (MaxScore over postings, the dense channel's candidate search
    limited to a few hits), where the vector index's filtered search matters."""
    monkeypatch.setattr(engine_channels, "STATS_SAMPLE", 20)
    monkeypatch.setattr(engine_dense, "DENSE_CANDIDATES", 8)
    monkeypatch.setattr(engine_ranking, "LOCAL_SCAN_MAX_ROWS", 0)  # these pools are tiny: let Milvus filter them


class _Searches(list):
    id_lists = 0

    def clear(self) -> None:
        super().clear()
        self.id_lists = 0


@pytest.fixture
def milvus_where(monkeypatch):
    """The `where` of every MilvusIndex search (the real search runs); `.id_lists` counts those given allowed ids."""
    seen = _Searches()
    search = MilvusIndex.search

    def recording(self, queries, k, allowed_ids=None, where=None):
        seen.append(where)
        seen.id_lists += allowed_ids is not None
        return search(self, queries, k, allowed_ids, where=where)

    monkeypatch.setattr(MilvusIndex, "search", recording)
    return seen


def _engines(docs: list[Document]) -> dict[str, MatchEngine]:
    embedder = BuiltinEmbedder(dim=16)
    embedder.fit([d.text for d in docs])
    vectors = embedder.encode([d.text for d in docs])
    out = {}
    for backend in ("faiss", "milvus"):
        engine = MatchEngine(embedder, WEIGHTS, vector_backend=backend)
        engine.build(docs, vectors=vectors)
        out[backend] = engine
    return out


FILTERS = {
    "province": FieldFilter(((condition("province", "in", ["山东省", "广东省"]),),)),
    "exclude city": FieldFilter(((condition("city", "ne", "苏州市"),),)),
    "tag": FieldFilter(((condition("tags", "contains_any", ["上市", "专精特新"]),),)),
    "status": FieldFilter(((condition("status", "in", ["存续", "在业"]),),)),
    "combined": FieldFilter(
        (
            (condition("province", "in", ["江苏省"]), condition("city", "in", ["深圳市"])),
            (condition("status", "in", ["存续", "在业"]),),
        )
    ),
}


def _ids_passing(docs: list[Document], flt: FieldFilter) -> list[int]:
    columns = {name: [d.fields[name] for d in docs] for name in docs[0].fields}
    return [d.id for d, ok in zip(docs, mask(flt, columns, len(docs))) if ok]


# (SELECTIVE_FILTER_SHARE, LOCAL_SCAN_MAX_ROWS) → how a filter reaches Milvus's dense search
ROUTES = {
    "selective, inside Milvus": (1.0, 0),
    "selective, scanned locally": (1.0, 10**6),
    "broad": (0.0, 0),
}


def _route(monkeypatch, route: str) -> None:
    share, local_max = ROUTES[route]
    monkeypatch.setattr(engine_ranking, "SELECTIVE_FILTER_SHARE", share)
    monkeypatch.setattr(engine_ranking, "LOCAL_SCAN_MAX_ROWS", local_max)


def _check_route(route: str, flt: FieldFilter, searches: _Searches) -> None:
    assert searches  # the dense candidate search ran on Milvus
    assert (flt in searches) == (route == "selective, inside Milvus")
    assert bool(searches.id_lists) == (route == "selective, scanned locally")  # the allowed rows' ids, not `where`


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_a_field_filter_on_milvus_ranks_as_id_lists_on_milvus_and_faiss(name, route, pruned, milvus_where, monkeypatch):
    """A selective filter (here: every filter, share 1) is applied inside Milvus's search, or, allowing few rows, as
    their ids scanned over Milvus's local rows; a broad one (share 0) masks the whole pool's nearest firms, as on
    faiss. Every way the ranking is the one the id lists give."""
    _route(monkeypatch, route)
    docs = _pool()
    engines = _engines(docs)
    milvus = engines["milvus"]
    assert milvus.vector_index.field_names() == {"province", "city", "status", "tags"}
    flt = FILTERS[name]
    allowed = _ids_passing(docs, flt)
    assert 0 < len(allowed) < len(docs)
    roster = [docs[0].id, docs[5].id, docs[10].id]  # a roster stays an id set beside the field filter
    assert milvus.filters_fields(flt) and not engines["faiss"].filters_fields(flt)
    for query in QUERIES:
        want = [h.id for h in engines["faiss"].search(query, 15, allowed_ids=allowed, excluded_ids=roster)]
        assert len(want) == 15 and set(want) <= set(allowed) - set(roster)
        milvus_where.clear()
        by_fields = [h.id for h in milvus.search(query, 15, excluded_ids=roster, where=flt)]
        _check_route(route, flt, milvus_where)
        by_ids = [h.id for h in milvus.search(query, 15, allowed_ids=allowed, excluded_ids=roster)]
        faiss_by_fields = [h.id for h in engines["faiss"].search(query, 15, excluded_ids=roster, where=flt)]
        assert by_fields == want and by_ids == want and faiss_by_fields == want, query
    # The whole-pool path (no pruning) applies the filter as a row mask on both backends alike.
    engine_channels.STATS_SAMPLE = 65_536
    assert [h.id for h in milvus.search(QUERIES[0], 15, excluded_ids=roster, where=flt)] == [
        h.id for h in engines["faiss"].search(QUERIES[0], 15, allowed_ids=allowed, excluded_ids=roster)
    ]


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_look_alikes_by_field_filter_equal_look_alikes_by_id_list(route, pruned, milvus_where, monkeypatch):
    """A look-alike search takes a FieldFilter as a match search does (Milvus applies a selective one in its vector
    search, or scans its allowed rows locally); the firms found are those the same filter finds as an id list, on
    Milvus and on faiss."""
    _route(monkeypatch, route)
    docs = _pool()
    engines = _engines(docs)
    for name, flt in sorted(FILTERS.items()):
        allowed = _ids_passing(docs, flt)
        for source in (docs[1], docs[6], docs[40]):
            want = [h.id for h in engines["faiss"].similar(source.id, 12, allowed_ids=allowed)]
            assert want and set(want) <= set(allowed) - {source.id}
            milvus_where.clear()
            by_fields = [h.id for h in engines["milvus"].similar(source.id, 12, where=flt)]
            _check_route(route, flt, milvus_where)
            assert by_fields == want, (name, source.id)
            assert [h.id for h in engines["faiss"].similar(source.id, 12, where=flt)] == want


def test_a_firm_that_moves_province_is_filtered_by_its_new_one(pruned, tmp_path):
    docs = _pool()
    milvus = _engines(docs)["milvus"]
    shandong = FieldFilter(((condition("province", "in", ["山东省"]),),))
    mover = next(d for d in docs if d.fields["province"] == "江苏省")
    query = mover.text
    assert mover.id not in [h.id for h in milvus.search(query, 30, where=shandong)]
    moved = Document(
        mover.id,
        mover.name,
        mover.text,
        mover.products,
        fields={**mover.fields, "province": "山东省", "city": "济南市"},
    )
    milvus.add([moved])
    hits = milvus.search(query, 30, where=shandong)
    assert hits[0].id == mover.id  # its own profile: first once it is in the province
    _, inside = milvus.vector_index.search(milvus.vector_index.vectors([mover.id])[0], 5, where=shandong)
    assert mover.id in inside[0]  # Milvus's stored field itself was rewritten
    # Fields are saved with the documents, so a loaded engine filters alike.
    milvus.save(tmp_path / "engine")
    loaded = MatchEngine.load(tmp_path / "engine")
    assert loaded.document(mover.id).fields["province"] == "山东省"
    assert [h.id for h in loaded.search(query, 30, where=shandong)] == [h.id for h in hits]


def test_web_candidates_on_milvus_equal_faiss_for_a_province_filter(app, seeded, monkeypatch, pruned, milvus_where):
    from chains.enterprise_models import Enterprise
    from webapp.extensions import db
    from webapp.services import match as matchsvc
    from webapp.services.match import engine_state, store

    def candidates(**filters):
        store.state_of(app).engine.weights = WEIGHTS  # the built-in LSA's dense weight is 0 in the product
        return [c.enterprise_id for c in matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", filters, k=10).items]

    cases = [
        {"provinces": ["广东省", "江苏省"]},
        {"provinces": ["广东省"], "exclude_cluster_city": True},
        {"exclude_cluster_province": True, "tags": ["上市", "外资"]},
        {"capital_min": 10000},
    ]

    def look_alikes(**filters):
        store.state_of(app).engine.weights = WEIGHTS
        return [c.enterprise_id for c in matchsvc.look_alikes(db.session, firm, k=10, filters=filters)]

    before = [candidates(**case) for case in cases]
    firm = before[0][0]
    similar_before = [look_alikes(**case) for case in cases]
    assert store.state_of(app).engine.document(before[0][0]).fields is None  # faiss: documents carry no fields
    monkeypatch.setitem(app.config, "VECTOR_BACKEND", "milvus")
    app.extensions.pop(engine_state.EXTENSION_KEY)
    assert matchsvc.sync(db.session, app).rebuilt
    engine = store.state_of(app).engine
    assert engine.vector_index.field_names() == {"province", "city", "country", "status", "tags"}
    milvus_where.clear()
    after = [candidates(**case) for case in cases]
    assert after == before and after[0]
    wheres = [w for w in milvus_where if w is not None]
    assert any(c.field == "province" for w in wheres for clause in w.clauses for c in clause)
    by_id = {e.id: e for e in db.session.scalars(select(Enterprise))}
    assert all(by_id[i].province in ("广东省", "江苏省") for i in after[0])
    # Look-alikes take the same filters as fields and find the same firms.
    milvus_where.clear()
    similar_after = [look_alikes(**case) for case in cases]
    assert similar_after == similar_before and similar_after[0]
    assert any(w is not None and "province" in w.fields() for w in milvus_where)
    assert all(by_id[i].province in ("广东省", "江苏省") for i in similar_after[0])
