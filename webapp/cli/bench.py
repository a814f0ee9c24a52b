"""`chainmatch bench …`: performance benchmarks printing JSON figures with the machine's facts (docs/performance.md).

Generated data (synthetic pools, embeddings, indexes, throw-away databases) goes under --work (default: the system
temp folder), never into the repository. The benchmarks themselves live in the source checkout's top-level `bench/`
package, which the wheel does not ship: these commands run from a clone (`make setup`), not from an installed wheel.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import click
from flask.cli import with_appcontext

from webapp.cli.match import progress_bar

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding webapp/ and bench/


def _perf(name: str) -> ModuleType:
    """The benchmark module bench.perf.<name> of the source checkout (bench/ is not installed with the package)."""
    if not (SOURCE_ROOT / "bench" / "perf" / f"{name}.py").is_file():
        raise click.ClickException(
            "chainmatch bench needs a source checkout: bench/ is not shipped in the wheel (clone the repository and "
            "run make setup)"
        )
    if str(SOURCE_ROOT) not in sys.path:
        sys.path.insert(0, str(SOURCE_ROOT))
    return importlib.import_module(f"bench.perf.{name}")


def _emit(data: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _log(message: str) -> None:
    click.echo(f"[bench] {message}", err=True)


_n_option = click.option(
    "--n", "n", type=click.IntRange(min=0), default=100_000, show_default=True, help="Synthetic firms in the pool."
)
_seed_option = click.option("--seed", type=int, default=1, show_default=True, help="Synthetic data seed.")
_json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object on one line.")
_work_option = click.option(
    "--work",
    "work",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for generated data (default: <tmp>/chainmatch-bench/<bench>-<n>-<seed>).",
)


@click.group("bench")
def bench_group() -> None:
    """Performance benchmarks (synthetic pools; JSON figures with cores and memory).

    Generated data goes under --work (default the temp folder). Figures and commands: docs/performance.md.
    """


@bench_group.command("match")
@_n_option
@_seed_option
@click.option("--queries", type=click.IntRange(min=1), default=200, show_default=True, help="Link queries timed.")
@click.option("--lexical-only", is_flag=True, help="Engine without an embedder (no dense channel).")
@click.option(
    "--static",
    "static_model",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Embed with this trained static embedder folder (MODEL_DIR/static/<digest>) instead of the "
    "built-in LSA; its encoding time is reported.",
)
@click.option(
    "--vector-backend",
    type=click.Choice(["faiss", "milvus"]),
    default="faiss",
    show_default=True,
    help="Where the engine keeps its vectors. milvus: embedded milvus-lite, documents with province/city/status "
    "fields, region and status filters given as a field filter (as the web service does), the roster as ids.",
)
@click.option("--force", is_flag=True, help="Run even when the engine is estimated not to fit in memory.")
@_work_option
@_json_option
def bench_match(
    n: int,
    seed: int,
    queries: int,
    lexical_only: bool,
    static_model: str | None,
    vector_backend: str,
    force: bool,
    work: str | None,
    as_json: bool,
) -> None:
    """Match query latency in the engine (encoding + vector search + lexical + fusion + filters), top 100."""
    match_bench = _perf("match_bench")

    with progress_bar("build") as progress:  # the bar follows the total: a build embeds firms, then counts terms
        figures = match_bench.run(
            n,
            seed,
            queries,
            with_embedder=not lexical_only,
            progress=progress,
            log=_log,
            force=force,
            folder=work,
            static_model=static_model,
            vector_backend=vector_backend,
        )
    _emit(figures, as_json)


@bench_group.command("ray")
@click.option("--n", "n", type=click.IntRange(min=1), default=2000, show_default=True, help="Synthetic firms embedded.")
@_seed_option
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Local Ray workers.")
@_json_option
@with_appcontext
def bench_ray(n: int, seed: int, workers: int, as_json: bool) -> None:
    """Embedding N synthetic firms with the configured model: in process vs a local Ray (texts/s per core)."""
    from flask import current_app

    from webapp.services.match.embedding import configured_model, embedder_options

    ray_bench = _perf("ray_bench")

    app = current_app._get_current_object()
    _emit(
        ray_bench.run(
            n,
            seed,
            models_dir=str(embedder_options(app)["models_dir"]),
            model=configured_model(app),
            backend=embedder_options(app)["backend"],
            workers=workers,
            log=_log,
        ),
        as_json,
    )


@bench_group.command("vector")
@_n_option
@_seed_option
@click.option("--queries", type=click.IntRange(min=1), default=200, show_default=True, help="Query vectors.")
@click.option(
    "--kind",
    type=click.Choice(["auto", "flat", "ivfpq"]),
    default="auto",
    show_default=True,
    help="Index kind (auto: exact up to CHAINMATCH_INDEX_EXACT_MAX's default, IVF-PQ above).",
)
@click.option(
    "--refine",
    "refines",
    multiple=True,
    type=click.Choice(["fp32", "sq8", "fp16"]),
    help="Refine-copy precision(s) to build and compare (repeatable; default fp32, the product's).",
)
@_work_option
@_json_option
def bench_vector(
    n: int, seed: int, queries: int, kind: str, refines: tuple[str, ...], work: str | None, as_json: bool
) -> None:
    """Vector index: build time from stored embeddings, RAM per firm, recall@10 vs exact, latency, filters."""
    vector_bench = _perf("vector_bench")

    with progress_bar("embed") as progress:
        figures = vector_bench.run(
            n,
            seed,
            queries,
            work,
            kind=kind,
            refines=refines or vector_bench.DEFAULT_REFINES,
            progress=progress,
            log=_log,
        )
    _emit(figures, as_json)


@bench_group.command("embed")
@_n_option
@_seed_option
@click.option("--chunk", type=click.IntRange(min=1), default=None, help="Texts per stored chunk (default n/10).")
@click.option(
    "--st-texts",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Texts for the sentence-transformers backend comparison (0: skip it).",
)
@_work_option
@_json_option
def bench_embed(n: int, seed: int, chunk: int | None, st_texts: int, work: str | None, as_json: bool) -> None:
    """Pool embedding: throughput, a stopped-and-resumed run, torch vs ONNX vs ONNX int8."""
    embed_bench = _perf("embed_bench")

    with progress_bar("embed") as progress:
        figures = embed_bench.run(
            n, seed, chunk, work, st_texts=st_texts, backends=st_texts > 0, progress=progress, log=_log
        )
    _emit(figures, as_json)


@bench_group.command("import")
@_n_option
@_seed_option
@click.option(
    "--postgres-url",
    default="",
    envvar="CHAINMATCH_BENCH_POSTGRES_URL",
    help="Also import into PostgreSQL (a throw-away schema), e.g. postgresql+psycopg://postgres@127.0.0.1/test.",
)
@_json_option
def bench_import(n: int, seed: int, postgres_url: str, as_json: bool) -> None:
    """Enterprise import rows/s into a fresh SQLite file (and PostgreSQL), first pass and idempotent re-import."""
    import_bench = _perf("import_bench")

    _emit(import_bench.run(n, seed, postgres_url, log=_log), as_json)


@bench_group.command("web")
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=0),
    default=10_000,
    show_default=True,
    help="Synthetic firms imported besides the bundled demo data.",
)
@click.option("--clients", type=click.IntRange(min=1), default=8, show_default=True, help="Concurrent clients.")
@click.option("--seconds", type=click.FloatRange(min=1), default=30, show_default=True, help="Load time per page.")
@click.option("--database-url", default="", help="Database for the throw-away instance (default: SQLite in it).")
@click.option(
    "--server",
    type=click.Choice(["serve", "run"]),
    default="serve",
    show_default=True,
    help="serve: `chainmatch serve` (gunicorn, worker processes); run: Flask's development server.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Worker processes of `chainmatch serve` (default: one per CPU core).",
)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads per worker (default 4).")
@click.option(
    "--tool",
    type=click.Choice(["auto", "wrk", "asyncio"]),
    default="auto",
    show_default=True,
    help="Load generator: wrk (Debian package) when installed, else a Python asyncio client.",
)
@click.option(
    "--nice",
    type=click.IntRange(-20, 19),
    default=0,
    show_default=True,
    help="Niceness of the server and wrk (negative needs root): measure despite other busy processes.",
)
@_work_option
@_json_option
def bench_web(
    n: int,
    clients: int,
    seconds: float,
    database_url: str,
    server: str,
    workers: int | None,
    threads: int | None,
    tool: str,
    nice: int,
    work: str | None,
    as_json: bool,
) -> None:
    """Chain-map page and candidates fragment p50/p95 with concurrent logged-in clients against the real server."""
    web_bench = _perf("web_bench")

    _emit(
        web_bench.run(
            n,
            clients,
            seconds,
            work,
            database_url,
            log=_log,
            server=server,
            workers=workers,
            threads=threads,
            tool=tool,
            nice=nice,
        ),
        as_json,
    )


COMMANDS = [bench_group]
