"""`chainmatch eval-matching` end-to-end on a tiny firms/queries benchmark written here (no database used)."""

from __future__ import annotations

import csv
import json

import pytest

from matching.metrics import score_rankings
from tests.worlds.learning import TEST_VARIANTS, TRAIN_VARIANTS, synthetic_pool
from tests.worlds.matching_corpus import corpus


def _write_benchmark(tmp_path, docs, queries, name="q.jsonl"):
    firms = tmp_path / "firms.csv"
    with open(firms, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["external_id", "name", "business_scope"])
        for d in docs:
            w.writerow([f"f-{d.id}", d.name, d.text.split("；", 1)[-1]])
    qpath = tmp_path / name
    qpath.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries), encoding="utf-8")
    return firms, qpath


def _app_without_database(tmp_path):
    from webapp import create_app

    db_file = tmp_path / "never-created.sqlite3"
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "t",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file}",
            "INSTANCE_PATH": str(tmp_path / "inst"),
            "RATELIMIT_STORAGE_URI": "memory://",
            "EMBEDDING_MODEL": "builtin",
        }
    )
    return app, db_file


def test_eval_matching_writes_rankings_and_prints_metrics(tmp_path):
    docs, groups = corpus()
    queries = [
        {"query": "正极材料", "relevant": [f"f-{i}" for i in groups["cathode"]]},
        {"query": "船舶设计建造", "relevant": [f"f-{i}" for i in groups["ship"]]},
        {"query": "没有标注的查询"},
    ]
    firms, qpath = _write_benchmark(tmp_path, docs, queries)
    out = tmp_path / "out" / "rankings.jsonl"
    app, db_file = _app_without_database(tmp_path)
    result = app.test_cli_runner().invoke(
        args=["eval-matching", "--firms", str(firms), "--queries", str(qpath), "--rankings", str(out), "--top", "10"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["query"] for r in rows] == [q["query"] for q in queries]
    assert all(len(r["ranked"]) == 10 and len(set(r["ranked"])) == 10 for r in rows)
    assert set(rows[0]["ranked"][:8]) == {f"f-{i}" for i in groups["cathode"]}
    # The printed metrics are those of the written rankings against the queries' relevant lists.
    printed = {
        line.split(":")[0]: float(line.split()[1])
        for line in result.output.splitlines()
        if line.startswith(("nDCG@10:", "Recall@50:", "MAP@100:"))
    }
    expected = score_rankings([r["ranked"] for r in rows[:2]], [q["relevant"] for q in queries[:2]])
    assert printed["nDCG@10"] == pytest.approx(expected["ndcg@10"], abs=1e-4)
    assert printed["Recall@50"] == pytest.approx(expected["recall@50"], abs=1e-4)
    assert printed["MAP@100"] == pytest.approx(expected["map@100"], abs=1e-4)
    assert printed["nDCG@10"] > 0.9  # both labelled queries have their own industry's firms on top
    assert "with relevance: 2" in result.output
    assert not db_file.exists()  # the command never opened the app database


def test_eval_matching_learns_from_train_file(tmp_path):
    docs, members = synthetic_pool()
    train = [
        {"query": v.format(ind), "relevant": [f"f-{i}" for i in ids]}
        for ind, ids in members.items()
        for v in TRAIN_VARIANTS
    ]
    test = [
        {"query": v.format(ind), "relevant": [f"f-{i}" for i in ids]}
        for ind, ids in members.items()
        for v in TEST_VARIANTS
    ]
    firms, qpath = _write_benchmark(tmp_path, docs, test)
    tpath = tmp_path / "train.jsonl"
    tpath.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in train), encoding="utf-8")
    app, _ = _app_without_database(tmp_path)
    runner = app.test_cli_runner()
    base = ["eval-matching", "--firms", str(firms), "--queries", str(qpath), "--rankings", str(tmp_path / "a.jsonl")]
    plain = runner.invoke(args=base)
    learned = runner.invoke(args=base + ["--train", str(tpath)])
    assert plain.exit_code == 0 and learned.exit_code == 0, learned.output

    def ndcg(output: str) -> float:
        return float(next(line for line in output.splitlines() if line.startswith("nDCG@10:")).split()[1])

    assert ndcg(learned.output) > ndcg(plain.output)
