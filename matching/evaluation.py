"""Benchmark runner: rank a firms file for every query of a queries file and score the rankings.

Used by `chainmatch eval-matching` and bench/ablation_matching.py. Everything is built in memory
from the files given; no database is used.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matching.engine import Document, MatchEngine
from matching.fusion import FusionWeights, pool_weights, pretrained_weights
from matching.learning import LabelledQuery, learn
from matching.metrics import score_rankings
from matching.profiles import enterprise_profile

if TYPE_CHECKING:
    from matching.embedders.base import Embedder
    from matching.embedders.static import StaticEmbedder
    from matching.embedders.static_training import Encode

DEFAULT_TOP = 100


@dataclass
class Firms:
    external_ids: list[str]
    docs: list[Document]

    def index_of(self) -> dict[str, int]:
        return {x: i for i, x in enumerate(self.external_ids)}


def read_firms(path: Path) -> Firms:
    """Read `external_id,name,business_scope` CSV (UTF-8, optional BOM); document ids are row numbers."""
    ext: list[str] = []
    docs: list[Document] = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            eid = (row.get("external_id") or "").strip()
            if not eid:
                continue
            name = (row.get("name") or "").strip()
            scope = (row.get("business_scope") or "").strip()
            docs.append(Document(len(docs), name, enterprise_profile(name, scope)))
            ext.append(eid)
    return Firms(ext, docs)


def read_queries(path: Path) -> list[dict[str, Any]]:
    """One JSON object a line with "query" and optionally "relevant" (external ids)."""
    out = []
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            line = line.strip()
            if line:
                row = json.loads(line)
                out.append({"query": str(row["query"]), "relevant": list(row.get("relevant") or [])})
    return out


def labelled(queries: Sequence[dict[str, Any]], firms: Firms) -> list[LabelledQuery]:
    """Queries with relevance lists as LabelledQuery (unknown external ids dropped)."""
    index = firms.index_of()
    out = []
    for q in queries:
        rel = [index[x] for x in q["relevant"] if x in index]
        if rel:
            out.append(LabelledQuery(q["query"], rel))
    return out


def build_engine(
    firms: Firms,
    model: str = "",
    weights: FusionWeights | None = None,
    backend: str = "auto",
    models_dir: Path | None = None,
    onnx_cache: Path | None = None,
    vector_cache: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    static: bool = False,
    log: Callable[[str], None] = lambda m: None,
) -> MatchEngine:
    """An engine over the firms, searched as the product searches: with the bundled multilingual-e5-small (`model`
    empty; converted into `models_dir`), another local sentence-transformers model (a path), or the lexical channels
    alone (`model` "builtin": the built-in LSA embedder's fusion weight is 0). `static`: a static embedder trained
    from that model on these firms' profiles (matching.embedders.static_training) searches instead of the model.
    Transformer vectors go through the vector cache folder `vector_cache` when given, so a second run encodes
    nothing."""
    from matching.embedders import is_builtin, make_embedder
    from matching.embedders.vector_cache import cached_encoders

    if is_builtin(model):
        engine = MatchEngine(weights=weights or pool_weights([d.text for d in firms.docs], pretrained=False))
        engine.build(firms.docs)
        return engine
    embedder = make_embedder(model, backend=backend, models_dir=models_dir, cache_dir=onnx_cache)
    texts = [d.text for d in firms.docs]
    documents, queries = cached_encoders(embedder, vector_cache, progress)  # the product's own caches
    vectors = None
    if static:
        embedder = train_static_embedder(embedder, texts, documents, queries, models_dir, log)
    elif vector_cache is not None:
        vectors = documents(texts)
    engine = MatchEngine(embedder=embedder, weights=weights or pretrained_weights(texts))
    engine.build(firms.docs, vectors=vectors)
    return engine


def train_static_embedder(
    teacher: Embedder,
    texts: list[str],
    documents: Encode,
    queries: Encode,
    models_dir: Path | None,
    log: Callable[[str], None] = lambda m: None,
) -> StaticEmbedder:
    """A static embedder trained from `teacher` on `texts`, saved under the models folder."""
    from matching.embedders import e5_bundle
    from matching.embedders.static import StaticEmbedder, write_model
    from matching.embedders.static_training import train

    vocab, tables, figures = train(texts, documents, queries)
    folder = write_model(
        Path(models_dir) if models_dir else e5_bundle.models_dir_default(), teacher.name, vocab, tables, figures
    )
    log(f"static embedder trained in {figures['seconds']} s: {figures['vocabulary']} tokens, loss {figures['loss']}")
    return StaticEmbedder(folder)


def use_query_bank(engine: MatchEngine, texts: Sequence[str]) -> None:
    """Correct the engine's rankings for hubness over these query texts, as the product does over its chains' links
    (matching.engine.hubness): the benchmark's labels play the links' part. Uses no relevance labels."""
    engine.set_hubness(engine.compute_hubness(texts))


def rank_queries(engine: MatchEngine, firms: Firms, queries: Sequence[dict[str, Any]], top: int) -> list[list[str]]:
    return [[firms.external_ids[h.id] for h in engine.search(q["query"], k=top)] for q in queries]


def run_benchmark(
    firms_csv: Path,
    queries_jsonl: Path,
    out_jsonl: Path,
    train_jsonl: Path | None = None,
    top: int = DEFAULT_TOP,
    model: str = "",
    log: Callable[[str], None] = lambda m: None,
    backend: str = "auto",
    models_dir: Path | None = None,
    onnx_cache: Path | None = None,
    vector_cache: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    static: bool = False,
) -> dict[str, Any]:
    """Build, optionally learn from TRAIN, rank every query, write OUT.jsonl; returns metrics and timings."""
    t0 = time.time()
    firms = read_firms(Path(firms_csv))
    queries = read_queries(Path(queries_jsonl))
    engine = build_engine(
        firms,
        model,
        backend=backend,
        models_dir=models_dir,
        onnx_cache=onnx_cache,
        vector_cache=vector_cache,
        progress=progress,
        static=static,
        log=log,
    )
    use_query_bank(engine, [q["query"] for q in queries])
    t_build = time.time() - t0
    log(
        f"indexed {len(firms.docs)} firms in {t_build:.1f}s with {engine.info().get('embedder') or 'lexical channels'}"
        f" (weights {engine.weights.channel_weights()}; hubness over the {len(queries)} queries)"
    )
    learned = None
    if train_jsonl:
        examples = labelled(read_queries(Path(train_jsonl)), firms)
        model_ = learn(engine, examples)
        engine.apply_learning(model_)
        learned = model_.summary()
        log(f"learned from {len(examples)} labelled queries: {learned}")
    t1 = time.time()
    rankings = rank_queries(engine, firms, queries, top)
    t_search = time.time() - t1
    Path(out_jsonl).parent.mkdir(parents=True, exist_ok=True)
    with open(out_jsonl, "w", encoding="utf-8") as fh:
        for q, ranked in zip(queries, rankings):
            fh.write(json.dumps({"query": q["query"], "ranked": ranked}, ensure_ascii=False) + "\n")
    metrics = score_rankings(rankings, [q["relevant"] for q in queries])
    return {
        **metrics,
        "firms": len(firms.docs),
        "ranked_queries": len(queries),
        "learned": learned,
        "embedder": engine.info().get("embedder"),
        "build_seconds": t_build,
        "search_seconds": t_search,
        "total_seconds": time.time() - t0,
    }
