"""Late interaction: e5-small's token vectors re-rank the product's top 100 (docs/matching.md, "Measured").

ColBERT's MaxSim (Khattab & Zaharia 2020) without ColBERT's training: every query token (e5's "query: " prefix,
[CLS] and [SEP] left out) takes its best cosine over the firm's profile tokens ("passage: " likewise), and the firm's
score is their mean. The product's 100 best firms of each label (`MatchEngine.search`, hubness over the labels as
`eval-matching`) are re-ordered by z(product score) + w × z(MaxSim), both standardised over the 100, and by MaxSim
alone. Runs the model with torch fp32 (token vectors are not in the product's ONNX export); about 2 minutes of
encoding on ICKG, 7 on SW3. Nothing here is in the product's ranking.

    CHAINMATCH_INSTANCE_PATH=/work/eval/instance .venv/bin/python bench/late_interaction.py \\
        --firms ../shared/benchmarks/ickg/firms.csv --queries ../shared/benchmarks/ickg/dev_queries.jsonl \\
        --models-dir /work/eval/instance/models --vector-cache /work/eval/instance/embedding-cache
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.probe_harness import benchmark_parser  # noqa: E402
from matching.embedders.e5_bundle import DEFAULT_MODEL_NAME  # noqa: E402
from matching.embedders.sentence_transformer import MAX_SEQ_LENGTH  # noqa: E402
from matching.evaluation import build_engine, read_firms, read_queries, use_query_bank  # noqa: E402
from matching.metrics import score_rankings  # noqa: E402

TOP = 100
WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
BATCH = 512  # profiles encoded between progress lines


def standardised(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() + 1e-9)


def main() -> None:
    from sentence_transformers import SentenceTransformer

    args = benchmark_parser(__doc__.splitlines()[0]).parse_args()
    firms, queries = read_firms(args.firms), read_queries(args.queries)
    texts, relevant = [q["query"] for q in queries], [q["relevant"] for q in queries]
    ext = np.asarray(firms.external_ids)
    engine = build_engine(
        firms, "", models_dir=args.models_dir, onnx_cache=args.models_dir / "onnx-cache", vector_cache=args.vector_cache
    )
    use_query_bank(engine, texts)
    hits = [engine.search(text, k=TOP) for text in texts]
    ids = [np.array([h.id for h in row]) for row in hits]
    scores = [np.array([h.score for h in row], np.float64) for row in hits]

    def show(label: str, orders: list[np.ndarray]) -> None:
        ndcg = score_rankings([list(ext[o]) for o in orders], relevant)["ndcg@10"]
        print(f"{label:28s} nDCG@10 {ndcg:.4f}", flush=True)

    show("product", ids)
    model = SentenceTransformer(str(args.models_dir / DEFAULT_MODEL_NAME), device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH

    def token_vectors(batch: list[str], prompt: str) -> list[np.ndarray]:
        skip = 1 + len(model.tokenizer(prompt.strip(), add_special_tokens=False)["input_ids"])  # [CLS] + the prompt
        out = []
        for tokens in model.encode([prompt + t for t in batch], output_value="token_embeddings", batch_size=32):
            v = tokens.numpy()[skip:-1]
            v = v if len(v) else tokens.numpy()
            out.append((v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32))
        return out

    need = sorted(set(np.concatenate(ids).tolist()))
    firm_tokens: dict[int, np.ndarray] = {}
    t0 = time.time()
    for start in range(0, len(need), BATCH):
        chunk = need[start : start + BATCH]
        firm_tokens.update(zip(chunk, token_vectors([firms.docs[i].text for i in chunk], "passage: ")))
        print(f"profiles {start + len(chunk)}/{len(need)} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    query_tokens = token_vectors(texts, "query: ")
    max_sim = [np.array([(q @ firm_tokens[i].T).max(axis=1).mean() for i in row]) for q, row in zip(query_tokens, ids)]
    for w in WEIGHTS:
        orders = [
            row[np.argsort(-(standardised(s) + w * standardised(m)), kind="stable")]
            for row, s, m in zip(ids, scores, max_sim)
        ]
        show(f"product + {w} × MaxSim", orders)
    show("MaxSim alone", [row[np.argsort(-m, kind="stable")] for row, m in zip(ids, max_sim)])


if __name__ == "__main__":
    main()
