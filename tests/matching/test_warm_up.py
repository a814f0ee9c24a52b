"""Warming a loaded engine: its memory-mapped files are found and read into the page cache, its filter fields coded,
and its searches stay the same."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from matching.embedders import BuiltinEmbedder
from matching.engine import Document, MatchEngine
from matching.fusion import FusionWeights
from matching.page_cache import PREFETCH_CHUNK_BYTES, mapped_files, prefetch
from matching.vectors import FieldFilter, condition
from matching.vectors.row_store import rows_path

TEXTS = [
    "磷酸铁锂正极材料研发生产",
    "动力电池电芯制造与电池包集成",
    "锂电池隔膜涂覆",
    "电解液及六氟磷酸锂",
    "新能源汽车整车制造",
    "汽车座椅与内饰件",
    "工业机器人减速器",
    "船舶制造与海洋工程装备",
    "海水淡化膜组件",
    "氢燃料电池电堆",
    "光伏组件与逆变器",
    "储能系统集成",
]
PROVINCES = ["山东省", "江苏省", "广东省"]


def test_mapped_files_name_the_files_of_mapped_arrays_views_and_sparse_matrices(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(100, dtype=np.float32))
    np.save(tmp_path / "b.npy", np.arange(11, dtype=np.int32))
    a = np.load(tmp_path / "a.npy", mmap_mode="r")
    indptr = np.load(tmp_path / "b.npy", mmap_mode="r")
    matrix = sp.csr_matrix((10, 10), dtype=np.float32)
    matrix.indptr = indptr  # as matching.lexical loads its matrices: the stored arrays, not copies
    in_ram = np.load(tmp_path / "a.npy")
    found = mapped_files([a[10:20], in_ram, matrix, "not an array", a])
    assert found == [tmp_path / "a.npy", tmp_path / "b.npy"]
    assert mapped_files([in_ram, np.asarray(a) + 1]) == []


def test_prefetch_reads_whole_files_in_order_within_the_budget_and_skips_missing_ones(tmp_path):
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(b"s" * 1000)
    large.write_bytes(b"l" * (PREFETCH_CHUNK_BYTES + 5))  # more than one read
    assert prefetch([small, tmp_path / "gone.bin", large], budget=10**9) == 1000 + PREFETCH_CHUNK_BYTES + 5
    assert prefetch([small, large], budget=PREFETCH_CHUNK_BYTES) == 1000  # the large one would pass the budget
    assert prefetch([large, small], budget=PREFETCH_CHUNK_BYTES) == 0  # stops there: what fits later waits too


def _milvus_engine() -> MatchEngine:
    embedder = BuiltinEmbedder(dim=4)
    embedder.fit(TEXTS)
    engine = MatchEngine(embedder, FusionWeights(dense=1.0, bm25=0.5, char=0.5), vector_backend="milvus")
    docs = [
        Document(
            i + 1,
            f"企业{i}",
            text,
            fields={"province": PROVINCES[i % 3], "city": f"市{i % 4}", "status": "存续" if i % 5 else "注销"},
        )
        for i, text in enumerate(TEXTS)
    ]
    engine.build(docs)
    return engine


def test_a_loaded_engine_warms_its_mapped_files_and_filter_fields_and_searches_the_same(tmp_path):
    built = _milvus_engine()
    where = FieldFilter(((condition("province", "in", ["山东省", "江苏省"]),), (condition("status", "in", ["存续"]),)))
    want = [(h.id, h.score) for h in built.search("锂电池材料", 5, where=where)]
    built.save(tmp_path / "engine")
    loaded = MatchEngine.load(tmp_path / "engine", mmap=True)  # as the web workers load it
    done = loaded.warm_up()
    files = {str(p.relative_to(tmp_path / "engine")) for p in done["files"]}
    assert str(rows_path(tmp_path / "engine" / "vectors.faiss").name) in files  # the vector rows
    assert {"bm25_word/columns_data.npy", "bm25_char/columns_indices.npy", "bm25_word/counts_data.npy"} <= files
    assert done["bytes_read"] == sum(p.stat().st_size for p in done["files"])
    assert done["fields"] == ["city", "province", "status"]
    assert [(h.id, h.score) for h in loaded.search("锂电池材料", 5, where=where)] == want
    loaded.vector_index.close()
    built.vector_index.close()


def test_an_engine_held_in_memory_has_nothing_to_read(tmp_path):
    built = _milvus_engine()
    done = built.warm_up()
    assert done["files"] == [] and done["bytes_read"] == 0
    built.vector_index.close()
