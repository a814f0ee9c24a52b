"""Probes for issue 14 (ICKG nDCG@10 in the default configuration) on a firms/queries benchmark.

Builds the product's engine once (BM25 words + chars .5/.5 + dense at the pool's weight, z-scored over the pool)
and scores variants from the raw channel matrices (queries × firms):
- a firm-name channel: BM25 (words, chars) over the firm name alone, fused as an extra channel;
- field weighting (BM25F-style): the name's term counts counted w times in the word and char channels;
- query-side term weights: character bigrams only, extra idf weighting, generic words (设备, 技术 …) down-weighted,
  the label's head word (its last jieba word) up- or down-weighted;
- per-title scoring (every patent title / scope item with the firm name its own document, a firm scored by its
  best segment) for the lexical channels only, with the whole-profile dense channel, and with the name channel;
  `--seg-dense` adds the dense channel per segment (segments are encoded through the vector cache);
- `--dense-no-name`: the dense channel over the profile without the firm name (encoded through the vector cache);
- `--combos`: only the combinations of the best of the above.
Usage:

    CHAINMATCH_INSTANCE_PATH=/work/eval/instance .venv/bin/python bench/ickg_probes.py \
        --firms ../shared/benchmarks/ickg/firms.csv --queries ../shared/benchmarks/ickg/dev_queries.jsonl \
        --models-dir /work/eval/instance/models --vector-cache /work/eval/instance/embedding-cache \
        [--seg-dense] [--dense-no-name] [--combos]

None of these is in the product; docs/matching.md ("Measured", issue 14 probes) gives the figures for both dev sets.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profile_evidence_probes import best_two, segments, z  # noqa: E402
from matching.analysis import count_matrices  # noqa: E402
from matching.evaluation import build_engine, read_firms, read_queries  # noqa: E402
from matching.fusion import FusionWeights, pretrained_weights  # noqa: E402
from matching.lexical import BM25Channel  # noqa: E402
from matching.metrics import score_rankings  # noqa: E402
from matching.text import char_ngrams, tokenize_query  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "ickg"
GENERIC = ("设备", "技术", "材料", "制造", "系统", "产品", "服务", "加工", "生产", "装置", "工程", "开发", "应用")

Terms = Callable[[str], dict[str, float]]


def word_terms(q: str) -> dict[str, float]:
    return dict.fromkeys(tokenize_query(q), 1.0)


def char_terms(q: str) -> dict[str, float]:
    return dict.fromkeys(char_ngrams(q, 1, 2), 1.0)


def matrix(channel: BM25Channel, queries: list[str], terms: Terms) -> np.ndarray:
    """Raw BM25 scores (queries × rows) of a channel for per-query weighted terms."""
    return np.stack([channel.scores_for(*channel.query_columns(terms(q))) for q in queries]).astype(np.float32)


def channel_over(texts: list[str], analyzer: str) -> BM25Channel:
    ch = BM25Channel(analyzer)
    ch.build(texts, workers=1)
    return ch


def field_weighted(base: BM25Channel, names: list[str], w: float) -> BM25Channel:
    """A copy of `base` whose rows count the name's terms w times (the name is already once in the profile)."""
    vocab = base.vocab
    extra = count_matrices(names, [base.analyzer], {base.analyzer: vocab}, workers=1)[base.analyzer]
    width = len(vocab)
    counts = sp.csr_matrix(
        (base.counts.data, base.counts.indices, base.counts.indptr), shape=(base.counts.shape[0], width)
    ).astype(np.float64)
    extra = sp.csr_matrix((extra.data, extra.indices, extra.indptr), shape=(extra.shape[0], width))
    ch = BM25Channel(base.analyzer, base.k1, base.b)
    ch.vocab = vocab
    weighted = (counts + (w - 1) * extra.astype(np.float64)).tocsr()
    weighted.eliminate_zeros()  # w = 0: the name's terms leave the row (and its document frequency)
    ch.set_counts(weighted)
    return ch


def generic_weighted(terms: Terms, g: float) -> Terms:
    def out(q: str) -> dict[str, float]:
        return {t: (g if any(t in word for word in GENERIC if word in q) else v) for t, v in terms(q).items()}

    return out


def head_weighted(terms: Terms, h: float) -> Terms:
    import jieba

    def out(q: str) -> dict[str, float]:
        words = [w for w in jieba.lcut(q) if w.strip()]
        head = words[-1] if len(words) > 1 else ""
        return {t: (h if head and t in head else v) for t, v in terms(q).items()}

    return out


def idf_weighted(terms: Terms, channel: BM25Channel, p: float) -> Terms:
    def out(q: str) -> dict[str, float]:
        got = {t: v for t, v in terms(q).items() if t in channel.vocab.ids}
        if not got:
            return got
        idf = {t: float(channel.idf[channel.vocab.ids[t]]) for t in got}
        mean = float(np.mean(list(idf.values()))) or 1.0
        return {t: v * (idf[t] / mean) ** p for t, v in got.items()}

    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firms", type=Path, default=DEFAULT_DIR / "firms.csv")
    ap.add_argument("--queries", type=Path, default=DEFAULT_DIR / "dev_queries.jsonl")
    ap.add_argument("--models-dir", type=Path, default=Path("instance/models"))
    ap.add_argument("--vector-cache", type=Path, default=Path("instance/embedding-cache"))
    ap.add_argument("--seg-dense", action="store_true", help="also score segments with the dense channel")
    ap.add_argument("--combos", action="store_true", help="only the combinations of the best probes")
    ap.add_argument("--dense-no-name", action="store_true", help="also encode the profiles without the firm name")
    args = ap.parse_args()

    t0 = time.time()
    firms = read_firms(args.firms)
    queries = read_queries(args.queries)
    texts = [q["query"] for q in queries]
    relevant = [q["relevant"] for q in queries]
    ext = np.asarray(firms.external_ids)
    names = [d.name for d in firms.docs]

    def ndcg(fused: np.ndarray) -> float:
        top = np.argsort(-fused, axis=1, kind="stable")[:, :100]
        return round(score_rankings([list(ext[t]) for t in top], relevant)["ndcg@10"], 4)

    def show(label: str, fused: np.ndarray) -> None:
        print(f"| {label} | {ndcg(fused):.4f} |", flush=True)

    engine = build_engine(
        firms, "", models_dir=args.models_dir, onnx_cache=args.models_dir / "onnx-cache", vector_cache=args.vector_cache
    )
    d = pretrained_weights([doc.text for doc in firms.docs]).dense
    ch = engine.channels
    bm25, char = ch["bm25"], ch["char"]
    assert isinstance(bm25, BM25Channel) and isinstance(char, BM25Channel)
    zb, zc = z(matrix(bm25, texts, word_terms)), z(matrix(char, texts, char_terms))
    zd = z(np.stack([engine.channel_scores(q, FusionWeights(bm25=0, char=0, dense=1))["dense"] for q in texts]))
    lex = 0.5 * zb + 0.5 * zc
    base = lex + d * zd
    print(f"built in {time.time() - t0:.0f}s; dense weight {d:g}; {len(texts)} queries", flush=True)
    print("| probe | nDCG@10 |\n|---|---|")
    show(f"product fusion (dense {d:g})", base)

    # 1. firm-name channel
    nb, nc = channel_over(names, "word"), channel_over(names, "char12")
    znb, znc = z(matrix(nb, texts, word_terms)), z(matrix(nc, texts, char_terms))
    if args.combos:
        show(
            "head word weight 0.67 + BM25F name x0.5",
            0.5 * z(matrix(field_weighted(bm25, names, 0.5), texts, head_weighted(word_terms, 0.67)))
            + 0.5 * z(matrix(field_weighted(char, names, 0.5), texts, head_weighted(char_terms, 0.67)))
            + d * zd,
        )
    for w in () if args.combos else (0.1, 0.2, 0.3, 0.5):
        show(f"+ name words {w:g}", base + w * znb)
        show(f"+ name chars {w:g}", base + w * znc)
        show(f"+ name words+chars {w:g}/{w:g}", base + w * (znb + znc))

    # 2. field weighting: name counted w times
    for w in () if args.combos else (2, 3, 0.5, 0.25, 0):
        fb, fc = field_weighted(bm25, names, w), field_weighted(char, names, w)
        zfb, zfc = z(matrix(fb, texts, word_terms)), z(matrix(fc, texts, char_terms))
        show(f"BM25F name x{w:g} (words+chars)", 0.5 * zfb + 0.5 * zfc + d * zd)
        if w in (0.5, 0):
            show(f"BM25F name x{w:g} (words only)", 0.5 * zfb + 0.5 * zc + d * zd)
            show(f"BM25F name x{w:g} (chars only)", 0.5 * zb + 0.5 * zfc + d * zd)

    # 3. query-side term weights (skipped with --combos)
    def fused_with(wt: Terms, ct: Terms) -> np.ndarray:
        return 0.5 * z(matrix(bm25, texts, wt)) + 0.5 * z(matrix(char, texts, ct)) + d * zd

    if not args.combos:
        show(
            "char channel: bigrams only",
            0.5 * zb
            + 0.5 * z(matrix(char, texts, lambda q: dict.fromkeys(char_ngrams(q, 2, 2) or char_ngrams(q, 1, 1), 1.0)))
            + d * zd,
        )
        show(
            "char channel: unigrams weight 0.5",
            0.5 * zb
            + 0.5 * z(matrix(char, texts, lambda q: {t: (0.5 if len(t) == 1 else 1.0) for t in char_ngrams(q, 1, 2)}))
            + d * zd,
        )
        for p in (0.5, 1.0):
            show(
                f"query terms x (idf/mean idf)^{p:g}",
                fused_with(idf_weighted(word_terms, bm25, p), idf_weighted(char_terms, char, p)),
            )
        for g in (0.5, 0.25):
            show(
                f"generic words (设备, 技术 …) weight {g:g}",
                fused_with(generic_weighted(word_terms, g), generic_weighted(char_terms, g)),
            )
        for h in (1.5, 0.67):
            show(f"head word weight {h:g}", fused_with(head_weighted(word_terms, h), head_weighted(char_terms, h)))

    # 4. per-title scoring
    seg_docs, owner = segments(args.firms)
    seg_texts = [doc.text for doc in seg_docs]
    sb, sc = channel_over(seg_texts, "word"), channel_over(seg_texts, "char12")
    zsb, zsc = z(matrix(sb, texts, word_terms)), z(matrix(sc, texts, char_terms))
    seg_lex = 0.5 * zsb + 0.5 * zsc
    best_lex = z(best_two(seg_lex, owner, len(ext))[0])
    print(f"segments: {len(seg_docs)} ({time.time() - t0:.0f}s)", flush=True)
    if args.combos:
        for f in (0.75, 1.5, 2):
            show(f"per-title lexical + whole-profile dense x{f:g} of the pool weight", best_lex + f * d * zd)
        per_channel = 0.5 * z(best_two(zsb, owner, len(ext))[0]) + 0.5 * z(best_two(zsc, owner, len(ext))[0])
        show("per-title lexical, max per channel, + whole-profile dense", per_channel + d * zd)
        hb = z(matrix(sb, texts, head_weighted(word_terms, 0.67)))
        hc = z(matrix(sc, texts, head_weighted(char_terms, 0.67)))
        show(
            "per-title lexical + whole-profile dense, head word 0.67",
            z(best_two(0.5 * hb + 0.5 * hc, owner, len(ext))[0]) + d * zd,
        )
        show("per-title lexical + whole-profile dense + name chars 0.05", best_lex + d * zd + 0.05 * znc)
        return
    show("per-title lexical alone", best_lex)
    show("per-title lexical + whole-profile dense", best_lex + d * zd)
    show("per-title lexical + whole lexical (.5/.5) + dense", 0.5 * best_lex + 0.5 * lex + d * zd)
    show("per-title lexical + dense + name words+chars .2", best_lex + d * zd + 0.2 * (znb + znc))
    bare = [
        doc.text[len(names[i]) + 1 :] if doc.text.startswith(names[i] + "。") else doc.text
        for doc, i in zip(seg_docs, owner)
    ]
    bb, bc = channel_over(bare, "word"), channel_over(bare, "char12")
    bare_lex = 0.5 * z(matrix(bb, texts, word_terms)) + 0.5 * z(matrix(bc, texts, char_terms))
    best_bare = z(best_two(bare_lex, owner, len(ext))[0])
    show("per-title lexical, titles without the name, + dense", best_bare + d * zd)
    if args.seg_dense:
        from matching.embedders import make_embedder
        from matching.embedders.vector_cache import cached_encoders

        embedder = make_embedder("", models_dir=args.models_dir, cache_dir=args.models_dir / "onnx-cache")
        documents, _ = cached_encoders(embedder, args.vector_cache, None)
        seg_vecs = documents(seg_texts)
        qv = embedder.encode_queries(texts)
        seg_fused = seg_lex + d * z(qv @ seg_vecs.T)
        best = z(best_two(seg_fused, owner, len(ext))[0])
        show("per-title all channels (previous best)", best)
        show("per-title all channels + name words+chars .2", best + 0.2 * (znb + znc))
        show("per-title all channels + whole-profile dense", best + d * zd)
    if args.dense_no_name:
        from matching.embedders.vector_cache import cached_encoders as _ce

        assert engine.embedder is not None
        documents2, _ = _ce(engine.embedder, args.vector_cache, None)
        scopes = [
            doc.text[len(doc.name) + 1 :] if doc.text.startswith(doc.name + "；") else doc.text for doc in firms.docs
        ]
        qv2 = engine.embedder.encode_queries(texts)
        zdn = z(qv2 @ documents2(scopes).T)
        show("dense over the profile without the name, alone", zdn)
        show("dense without the name (lexical unchanged)", lex + d * zdn)
        fb, fc = field_weighted(bm25, names, 0), field_weighted(char, names, 0)
        show(
            "no name anywhere (lexical and dense)",
            0.5 * z(matrix(fb, texts, word_terms)) + 0.5 * z(matrix(fc, texts, char_terms)) + d * zdn,
        )
    print(f"total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
