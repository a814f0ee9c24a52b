"""Whether ICKG's missed firms state their label: a count over the rankings `chainmatch eval-matching` writes.

For the labels that are not sector-level (not ending in 行业), it counts the (label, firm) pairs whose firm's name or
profile contains the label verbatim, among the relevant firms the ranking leaves out of its top 10, those it ranks
in, and the unlabelled firms in its top 10; then, for the missed ones that state it, how many sit under labels with
more relevant firms than a top 10 holds, and how full of relevant firms those top 10s already are.

    CHAINMATCH_INSTANCE_PATH=/work/eval/instance .venv/bin/chainmatch eval-matching \\
        --firms ../shared/benchmarks/ickg/firms.csv --queries ../shared/benchmarks/ickg/dev_queries.jsonl \\
        --rankings /tmp/ickg-rankings.jsonl
    .venv/bin/python bench/ickg_label_mentions.py --firms ../shared/benchmarks/ickg/firms.csv \\
        --queries ../shared/benchmarks/ickg/dev_queries.jsonl --rankings /tmp/ickg-rankings.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ickg_query_types import SECTOR_SUFFIX  # noqa: E402

TOP = 10


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--firms", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--rankings", type=Path, required=True, help="the file eval-matching --rankings wrote")
    args = parser.parse_args()
    with args.firms.open(encoding="utf-8") as fh:
        text = {row["external_id"]: row["name"] + row["business_scope"] for row in csv.DictReader(fh)}
    ranked = {row["query"]: row["ranked"] for row in _jsonl(args.rankings)}
    counts = {
        "relevant, missed from the top 10": [0, 0],
        "relevant, in the top 10": [0, 0],
        "top 10, unlabelled": [0, 0],
    }
    stated_missed, under_big_labels, big_labels, relevant_in_their_top = 0, 0, 0, 0
    labels = [q for q in _jsonl(args.queries) if not q["query"].endswith(SECTOR_SUFFIX)]
    for q in labels:
        label, relevant = q["query"], set(q["relevant"])
        top = ranked[label][:TOP]
        for firm in relevant:
            group = counts["relevant, in the top 10" if firm in top else "relevant, missed from the top 10"]
            group[0] += 1
            group[1] += label in text[firm]
        for firm in top:
            if firm not in relevant:
                counts["top 10, unlabelled"][0] += 1
                counts["top 10, unlabelled"][1] += label in text[firm]
        missed = [f for f in relevant if f not in top and label in text[f]]
        stated_missed += len(missed)
        if missed and len(relevant) > TOP:
            under_big_labels += len(missed)
            big_labels += 1
            relevant_in_their_top += sum(f in relevant for f in top)
    print(f"labels not ending in {SECTOR_SUFFIX}: {len(labels)}")
    for name, (pairs, stated) in counts.items():
        print(f"  {name}: {pairs} pairs, {stated / max(pairs, 1):.1%} state the label")
    print(
        f"  missed and stating it: {stated_missed} pairs, {under_big_labels / max(stated_missed, 1):.1%} under "
        f"{big_labels} labels with more than {TOP} relevant firms, whose top {TOP} holds "
        f"{relevant_in_their_top / max(big_labels, 1):.1f} relevant firms on average"
    )


if __name__ == "__main__":
    main()
