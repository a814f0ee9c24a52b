"""`chainmatch eval-matching`: score the matching engine on a firms/queries benchmark (no database used)."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from matching.embedders import BACKENDS
from matching.evaluation import DEFAULT_TOP, run_benchmark


@click.command("eval-matching")
@click.option(
    "--firms",
    "firms_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="CSV with columns external_id,name,business_scope.",
)
@click.option(
    "--queries",
    "queries_jsonl",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help='JSONL, one {"query": text, "relevant": [external_id, …]} a line.',
)
@click.option(
    "--rankings",
    "out_jsonl",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help='Output JSONL, one {"query": text, "ranked": [external_id, …]} a line.',
)
@click.option(
    "--train",
    "train_jsonl",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Labelled queries to learn from first (as confirmed link assignments are in the product).",
)
@click.option(
    "--top", type=click.IntRange(1, 10_000), default=DEFAULT_TOP, show_default=True, help="Firms written per query."
)
@click.option(
    "--model",
    default=None,
    help="Embedding model (default: the configured CHAINMATCH_EMBEDDING_MODEL, as the product searches): "
    "'' the bundled multilingual-e5-small, 'builtin' the lexical channels alone, or a local "
    "sentence-transformers model path.",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="How the model runs: torch, onnx, onnx-int8, or auto (onnx-int8 when onnxruntime is installed); "
    "default the configured CHAINMATCH_EMBEDDING_BACKEND.",
)
@click.option(
    "--static",
    "static",
    is_flag=True,
    help="Search with a static embedder trained from the model on these firms (a pool too large for the "
    "transformer), instead of the model itself.",
)
@click.option(
    "--no-vector-cache",
    is_flag=True,
    help="Encode every firm again instead of reusing vectors cached under instance/embedding-cache.",
)
@with_appcontext
def eval_matching(
    firms_csv: Path,
    queries_jsonl: Path,
    out_jsonl: Path,
    train_jsonl: Path | None,
    top: int,
    model: str | None,
    backend: str | None,
    static: bool,
    no_vector_cache: bool,
) -> None:
    """Rank FIRMS for every query, write the rankings, print nDCG@10, Recall@50 and MAP@100.

    Does not touch the database. By default with the configured model and backend (the bundled
    multilingual-e5-small), as the product searches; firm vectors are cached under instance/embedding-cache/, so a
    second run encodes nothing (docs/matching.md).
    """
    from flask import current_app

    from webapp.cli.match import progress_bar
    from webapp.services.match.embedding import (
        CACHE_FOLDER,
        configured_model,
        embedder_options,
        models_dir,
        onnx_cache_dir,
    )

    app = current_app
    model = configured_model(app) if model is None else model
    backend = embedder_options(app)["backend"] if backend is None else backend
    with progress_bar("计算语义向量", leave=False) as progress:
        result = run_benchmark(
            firms_csv,
            queries_jsonl,
            out_jsonl,
            train_jsonl,
            top,
            model,
            log=lambda m: click.echo(m, err=True),
            backend=backend,
            models_dir=models_dir(app),
            onnx_cache=onnx_cache_dir(app),
            vector_cache=None if no_vector_cache else Path(app.instance_path) / CACHE_FOLDER,
            progress=progress,
            static=static,
        )
    click.echo(f"queries: {result['ranked_queries']} (with relevance: {result['queries']})  firms: {result['firms']}")
    click.echo(f"nDCG@10: {result['ndcg@10']:.4f}")
    click.echo(f"Recall@50: {result['recall@50']:.4f}")
    click.echo(f"MAP@100: {result['map@100']:.4f}")
    click.echo(
        f"time: build {result['build_seconds']:.1f}s, search {result['search_seconds']:.1f}s, "
        f"total {result['total_seconds']:.1f}s"
    )


COMMANDS = [eval_matching]
