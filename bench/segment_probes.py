"""Best-segment BM25 (matching.segments) on a firms/queries benchmark: the segment share and the segment k1.

Builds the product's engine once (the pool's dense weight, z-scores over the whole pool) and re-weighs the two BM25
channels for each setting, printing nDCG@10 of the lexical channels alone and fused with the dense channel:

    CHAINMATCH_INSTANCE_PATH=/work/eval/instance .venv/bin/python bench/segment_probes.py \\
        --firms ../shared/benchmarks/ickg/firms.csv --queries ../shared/benchmarks/ickg/dev_queries.jsonl \\
        --models-dir /work/eval/instance/models --vector-cache /work/eval/instance/embedding-cache
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ickg_probes import char_terms, matrix, word_terms  # noqa: E402
from bench.probe_harness import probe_from_args  # noqa: E402
from bench.profile_evidence_probes import z  # noqa: E402
from matching import lexical  # noqa: E402

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
SEGMENT_K1S = (0.6, 0.9, 1.2)


def main() -> None:
    probe = probe_from_args(__doc__.splitlines()[0])
    texts, ndcg, d, zd, bm25, char = probe.texts, probe.ndcg, probe.dense_weight, probe.zd, probe.bm25, probe.char
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
