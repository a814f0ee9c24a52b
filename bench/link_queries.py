"""Which text of a chain link finds its firms best: measured on the bundled chain maps and demo firms.

Labels (public-source demo data, not a benchmark): a link's relevant firms are (1) the demo clusters' roster firms
placed on it (data/clusters/*.yaml, `links:`) and (2) the demo firms whose 国标行业代码 is one of the link's
`industry_codes`. Each query variant ranks all demo firms for every link that has relevant firms; nDCG@10 and
Recall@50 are averaged over those links, with the lexical channels alone and with the bundled embedding model
(the product's default fusion). `--score-bands` instead reads the 0–100 match scores users see
(`MatchEngine.match_score`) with the model and the default link query: each link's best score, and for every
band of ten points the share of the first 20 candidates that carry a label (labels are incomplete, so a lower bound of
the share that is relevant). Usage:

    .venv/bin/python bench/link_queries.py [--models-dir instance/models] [--vector-cache instance/embedding-cache] \
        [--score-bands]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chains.chainmap_parse import parse_chain_file  # noqa: E402
from matching.engine import Document, MatchEngine  # noqa: E402
from matching.evaluation import Firms, build_engine  # noqa: E402
from matching.metrics import score_rankings  # noqa: E402
from matching.profiles import enterprise_profile, link_query  # noqa: E402

DATA = ROOT / "data"


def _firms() -> tuple[Firms, dict[str, str]]:
    """The demo firms (external id → document) and each firm's industry code."""
    ext, docs, codes = [], [], {}
    with open(DATA / "enterprises" / "demo_firms.csv", encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            eid = row["外部编号"]
            docs.append(
                Document(
                    len(docs),
                    row["企业名称"],
                    enterprise_profile(row["企业名称"], row["经营范围"], row["主营产品"], row["所属行业"]),
                )
            )
            ext.append(eid)
            codes[eid] = (row.get("国标行业代码") or "").strip()
    return Firms(ext, docs), codes


def _labels(chains, codes: dict[str, str]) -> dict[str, dict[str, set[str]]]:
    """Link key → {"roster": firm ids placed on it, "industry": firms of one of its industry codes}."""
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"roster": set(), "industry": set()})
    for path in sorted((DATA / "clusters").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")).get("roster") or []:
            for key in entry.get("links") or []:
                out[key]["roster"].add(entry["firm"])
    for chain in chains:
        for link in chain.links:
            wanted = {str(c) for c in link.industry_codes or []}
            if wanted:
                out[link.key]["industry"] |= {eid for eid, code in codes.items() if code in wanted}
    return out


DEFAULT_VARIANT = (
    "product default (matching.profiles.link_query): name, keywords, synonyms, products, path, description[:60]"
)


def _path(link, by_key) -> list[str]:
    """The link's names from its top-level ancestor down to itself."""
    path, node = [], link
    while node is not None:
        path.append(node.name)
        node = by_key.get(node.parent_key) if node.parent_key else None
    return path[::-1]


def _default_query(link, by_key) -> str:
    """The product's link query (matching.profiles.link_query)."""
    return link_query(_path(link, by_key), link.description, link.keywords, link.synonyms, link.products)


def _variants(chain, link, by_key) -> dict[str, str]:
    path = _path(link, by_key)
    own = [link.name, *link.keywords, *link.synonyms, *link.products]
    return {
        DEFAULT_VARIANT: _default_query(link, by_key),
        "... + chain name (the default before this measurement)": "；".join(
            own + path[:-1] + [chain.name] + [link.description[:60]]
        ),
        "name only": link.name,
        "name + keywords": "；".join([link.name, *link.keywords]),
        "name + keywords + synonyms + products": "；".join(own),
        "... + path + chain name": "；".join(own + path[:-1] + [chain.name]),
        "... + whole description": "；".join(own + [link.description]),
        "... + description[:60] (no path)": "；".join(own + [link.description[:60]]),
        "description only": link.description or link.name,
    }


def _score_bands(engine: MatchEngine, firms: Firms, chains, labels) -> None:
    """Print each link's best match score (percentiles) and the labelled share of candidates by score band."""
    best: list[int] = []
    bands: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # band → [candidates, labelled]
    for chain in chains:
        by_key = {link.key: link for link in chain.links}
        for link in chain.links:
            hits = engine.search(_default_query(link, by_key), k=20)
            scores = [(h.id, engine.match_score(h.score)) for h in hits]
            best.append(scores[0][1] if scores else 0)
            relevant = labels[link.key]["roster"] | labels[link.key]["industry"]
            if relevant:
                for row, score in scores:
                    band = bands[min(score // 10, 9)]
                    band[0] += 1
                    band[1] += firms.external_ids[row] in relevant
    best.sort()
    quantiles = [best[int(q * (len(best) - 1))] for q in (0.1, 0.5, 0.9)]
    print(
        f"{len(best)} links; best match score 10th / 50th / 90th percentile: {quantiles[0]} / {quantiles[1]} / {quantiles[2]}"
    )
    print("| match score | candidates (first 20 of links with labels) | labelled |")
    print("|---|---|---|")
    for band in sorted(bands):
        n, labelled = bands[band]
        print(f"| {band * 10}–{band * 10 + 9} | {n} | {labelled / n:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, default=Path("instance/models"))
    ap.add_argument("--vector-cache", type=Path, default=Path("instance/embedding-cache"))
    ap.add_argument("--score-bands", action="store_true", help="the match scores users see, by band (with the model)")
    args = ap.parse_args()
    firms, codes = _firms()
    chains = [parse_chain_file(p) for p in sorted((DATA / "chains").glob("*.yaml"))]
    labels = _labels(chains, codes)
    engines = {
        "lexical": MatchEngine(),
        "with the model": build_engine(
            firms,
            "",
            models_dir=args.models_dir,
            onnx_cache=args.models_dir / "onnx-cache",
            vector_cache=args.vector_cache,
        ),
    }
    if args.score_bands:
        _score_bands(engines["with the model"], firms, chains, labels)
        return
    engines["lexical"].build(firms.docs)
    for label_kind in ("roster", "industry"):
        queries: dict[str, list[str]] = defaultdict(list)
        relevant: list[list[str]] = []
        for chain in chains:
            by_key = {link.key: link for link in chain.links}
            for link in chain.links:
                rel = sorted(labels[link.key][label_kind] & set(firms.external_ids))
                if not rel:
                    continue
                relevant.append(rel)
                for name, text in _variants(chain, link, by_key).items():
                    queries[name].append(text)
        print(f"\n{label_kind} labels: {len(relevant)} links")
        print("| query text | lexical nDCG@10 | lexical R@50 | with the model nDCG@10 | with the model R@50 |")
        print("|---|---|---|---|---|")
        for name, texts in queries.items():
            cells = []
            for engine in engines.values():
                ranked = [[firms.external_ids[h.id] for h in engine.search(t, k=100)] for t in texts]
                m = score_rankings(ranked, relevant)
                cells += [f"{m['ndcg@10']:.4f}", f"{m['recall@50']:.4f}"]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
