"""`chainmatch eval-matching`: score the matching engine on a firms/queries benchmark (no database used)."""
from __future__ import annotations

from pathlib import Path

import click

from matching.evaluation import DEFAULT_TOP, run_benchmark
from matching.onnx_backend import BACKENDS


@click.command("eval-matching")
@click.option("--firms", "firms_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="CSV with columns external_id,name,business_scope.")
@click.option("--queries", "queries_jsonl", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help='JSONL, one {"query": text, "relevant": [external_id, …]} a line.')
@click.option("--rankings", "out_jsonl", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help='Output JSONL, one {"query": text, "ranked": [external_id, …]} a line.')
@click.option("--train", "train_jsonl", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Labelled queries to learn from first (as confirmed link assignments are in the product).")
@click.option("--top", type=click.IntRange(1, 10_000), default=DEFAULT_TOP, show_default=True,
              help="Firms written per query.")
@click.option("--model", default="", help="Local sentence-transformers model path for the dense channel (default: none).")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="How --model runs: torch, onnx, onnx-int8, or auto (onnx-int8 when onnxruntime is installed).")
def eval_matching(firms_csv: Path, queries_jsonl: Path, out_jsonl: Path, train_jsonl: Path | None, top: int,
                  model: str, backend: str) -> None:
    """Rank FIRMS for every query, write the rankings, print nDCG@10, Recall@50 and MAP@100."""
    result = run_benchmark(firms_csv, queries_jsonl, out_jsonl, train_jsonl, top, model,
                           log=lambda m: click.echo(m, err=True), backend=backend)
    click.echo(f"queries: {result['ranked_queries']} (with relevance: {result['queries']})  firms: {result['firms']}")
    click.echo(f"nDCG@10: {result['ndcg@10']:.4f}")
    click.echo(f"Recall@50: {result['recall@50']:.4f}")
    click.echo(f"MAP@100: {result['map@100']:.4f}")
    click.echo(f"time: build {result['build_seconds']:.1f}s, search {result['search_seconds']:.1f}s, "
               f"total {result['total_seconds']:.1f}s")


COMMANDS = [eval_matching]
