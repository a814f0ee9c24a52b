"""Best-segment BM25 (matching.segments) on a firms/queries benchmark: the segment share and the segment k1.

Builds the product's engine once (the pool's dense weight, z-scores over the whole pool) and re-weighs the two BM25
channels for each setting, printing nDCG@10 of the lexical channels alone and fused with the dense channel:

    CHAINMATCH_INSTANCE_PATH=/work/eval/instance .venv/bin/python bench/segment_probes.py \\
        --firms ../shared/benchmarks/ickg/firms.csv --queries ../shared/benchmarks/ickg/dev_queries.jsonl \\
        --models-dir /work/eval/instance/models --vector-cache /work/eval/instance/embedding-cache
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ickg_probes import char_terms, matrix, word_terms  # noqa: E402
from bench.profile_evidence_probes import z  # noqa: E402
from matching import lexical  # noqa: E402
from matching.evaluation import build_engine, read_firms, read_queries  # noqa: E402
from matching.fusion import FusionWeights, pretrained_weights  # noqa: E402
from matching.lexical import BM25Channel  # noqa: E402
from matching.metrics import score_rankings  # noqa: E402

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
SEGMENT_K1S = (0.6, 0.9, 1.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firms", type=Path, required=True)
    ap.add_argument("--queries", type=Path, required=True)
    ap.add_argument("--models-dir", type=Path, default=Path("instance/models"))
    ap.add_argument("--vector-cache", type=Path, default=Path("instance/embedding-cache"))
    args = ap.parse_args()
    firms, queries = read_firms(args.firms), read_queries(args.queries)
    texts, relevant = [q["query"] for q in queries], [q["relevant"] for q in queries]
    ext = np.asarray(firms.external_ids)

    def ndcg(fused: np.ndarray) -> float:
        top = np.argsort(-fused, axis=1, kind="stable")[:, :100]
        return round(score_rankings([list(ext[t]) for t in top], relevant)["ndcg@10"], 4)

    engine = build_engine(
        firms, "", models_dir=args.models_dir, onnx_cache=args.models_dir / "onnx-cache", vector_cache=args.vector_cache
    )
    d = pretrained_weights([doc.text for doc in firms.docs]).dense
    zd = z(np.stack([engine.channel_scores(q, FusionWeights(bm25=0, char=0, dense=1))["dense"] for q in texts]))
    bm25, char = engine.channels["bm25"], engine.channels["char"]
    assert isinstance(bm25, BM25Channel) and isinstance(char, BM25Channel)
    print(
        f"pool share {bm25.segment_share:g}, dense weight {d:g}\n| share | segment k1 | lexical | fused |\n|---|---|---|---|"
    )
    default_k1 = lexical.SEGMENT_K1
    for k1 in SEGMENT_K1S:
        lexical.SEGMENT_K1 = k1  # read by the channels' re-weighing
        for share in SHARES if k1 == default_k1 else (1.0,):
            for channel in (bm25, char):
                channel.set_segment_share(share)
            lex = 0.5 * z(matrix(bm25, texts, word_terms)) + 0.5 * z(matrix(char, texts, char_terms))
            print(f"| {share:g} | {k1:g} | {ndcg(lex):.4f} | {ndcg(lex + d * zd):.4f} |", flush=True)
    lexical.SEGMENT_K1 = default_k1


if __name__ == "__main__":
    main()
