"""`chainmatch match …` (ranked candidates for a link) and `chainmatch index …` (build / status of the match index)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Callable, Iterator

import click
from flask import current_app
from flask.cli import with_appcontext

from webapp.cli.init import init_step
from webapp.extensions import db
from webapp.services.match.filter_fields import FILTER_FIELDS, KIND_FLAG, KIND_INTEGER, KIND_LIST, public_values


def _echo_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def filter_options(command):
    """The candidate filters as options, from the one table of filter fields (webapp.services.match.filter_fields):
    a list is a repeatable option, a flag a flag."""
    for f in reversed(FILTER_FIELDS):
        if f.cli is None:
            continue
        if f.kind == KIND_LIST:
            option = click.option(f.cli, multiple=True, help=f.help)
        elif f.kind == KIND_FLAG:
            option = click.option(f.cli, is_flag=True, help=f.help)
        else:
            option = click.option(f.cli, type=int if f.kind == KIND_INTEGER else float, help=f.help)
        command = option(command)
    return command


@click.command("match")
@click.argument("cluster_id")
@click.argument("link")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--top", default=20, show_default=True, help="How many candidates to print.")
@click.option("--offset", default=0, show_default=True, help="Skip this many candidates (paging).")
@filter_options
@with_appcontext
def match_command(cluster_id: str, link: str, as_json: bool, top: int, offset: int, **filter_values) -> None:
    """Rank candidate firms for LINK of cluster CLUSTER_ID, with the reasons for each. LINK is the link's key
    (ic-eda-ip) or its exact name (EDA工具)."""
    from webapp.services import match as matchsvc
    from webapp.services.match.links import cluster_or_error, link_set, resolve_link

    matchsvc.sync(db.session)  # the CLI may wait for the index; web requests never do
    try:
        cluster = cluster_or_error(db.session, cluster_id)
        link_key = resolve_link(link_set(db.session, cluster), cluster, link)
        query = matchsvc.CandidateQuery.of(cluster_id, link_key, public_values(filter_values, "cli"), top, offset)
        page = matchsvc.search(db.session, query)
    except matchsvc.MatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(page.as_dict())
        return
    click.echo(f"{page.link.name} ({page.link.key}) — 嵌入器 {page.embedder}")
    if page.message:
        click.echo(page.message)
    for c in page.items:
        score = "—" if c.match_score is None else c.match_score
        click.echo(f"{c.rank:>3}. {c.name}  [{c.region}]  匹配度 {score}  证据{c.evidence_label or '—'}")
        for reason in c.explanation:
            click.echo(f"       {reason}")
    if not page.items:
        click.echo("没有符合条件的候选企业。")


@click.group("index")
def index_group() -> None:
    """Build and inspect the match index (embeddings + faiss + lexical)."""


@index_group.command("build")
@click.option("--rebuild", "full", is_flag=True, help="Rebuild from scratch instead of syncing changes.")
@with_appcontext
def index_build(full: bool) -> None:
    """Build the match index, or bring it up to date with the database.

    With a pretrained model the lexical index is built first, then the firms' profiles are embedded (resumable: each
    finished chunk is kept in instance/embedding-cache/) and the vectors attached; --rebuild rebuilds from scratch.
    """
    from webapp.services import match as matchsvc

    app = current_app._get_current_object()
    with progress_bar("构建匹配索引（词法）") as progress:
        if full:
            result = matchsvc.rebuild(app, db.session, progress, reason="requested")
        else:
            result = matchsvc.sync(db.session, progress=progress)
    info = matchsvc.active_embedder_info(app, db.session)
    if result.rebuilt:
        click.echo(f"已重建索引：{info['count']} 家企业（{result.reason or 'rebuild'}）")
    else:
        click.echo(f"索引已同步：新增/更新 {result.added} 家，删除 {result.removed} 家，共 {info['count']} 家")
    embed_pending(app)
    info = matchsvc.active_embedder_info(app, db.session)
    click.echo(
        f"嵌入器 {info['embedder']}（{info['model']}；维度 {info['dim']}，{info['kind']}，向量 {info['vectors']}）"
    )


@contextmanager
def progress_bar(label: str, leave: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar driven by progress(done, total) callbacks; `leave=False` clears it when done."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="家", desc=label, disable=None, leave=leave)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        bar.close()


def embed_pending(app) -> None:
    """Run the embedding job here, with a progress bar, when the index's vectors are pending (a pretrained model):
    the CLI waits for it, where a web worker runs it in the background."""
    from webapp.services import match as matchsvc
    from webapp.services.match import store

    if store.state_of(app).meta.get("vectors") != store.VECTORS_PENDING:
        return
    with progress_bar("计算语义向量（预训练模型）") as progress:
        done = matchsvc.run_embedding(app, progress)
    if not done and store.state_of(app).meta.get("vectors") == store.VECTORS_PENDING:
        click.echo("语义向量由另一个进程计算中，或计算失败（见日志）；在此之前检索使用词法匹配。")


@index_group.command("embed")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Encode on Ray: a local Ray on this machine (--ray), or the cluster at ADDRESS (--ray ray://head:10001).",
)
@with_appcontext
def index_embed(ray_address: str | None) -> None:
    """Encode the registry's profiles with the pretrained model and attach the vectors to the index (resumable).

    --ray runs the embedding as a Ray Data job on a local Ray (2 workers, one embedder each, reading the registry in
    id-range partitions); --ray ADDRESS (e.g. ray://head:10001) on that Ray cluster, whose workers need this
    package, the database and a shared instance folder (docs/scaling.md). A killed run loses only partitions in
    flight.
    """
    from webapp.services import match as matchsvc
    from webapp.services.match import embedding, store
    from webapp.services.match.ray_embed import embed_on_ray

    app = current_app._get_current_object()
    matchsvc.sync(db.session, app)
    if store.state_of(app).meta.get("vectors") != store.VECTORS_PENDING:
        click.echo("索引的向量已就绪，无需计算。")
        return
    if ray_address:
        with progress_bar("Ray 分布式计算语义向量") as progress:
            figures = embed_on_ray(
                app, db.session, embedding.embedder_for(app), None if ray_address == "local" else ray_address, progress
            )
        click.echo(f"Ray：{figures['partitions']} 个分区，新计算 {figures['encoded']} 家，用时 {figures['seconds']} 秒")
    embed_pending(app)
    info = matchsvc.active_embedder_info(app, db.session)
    click.echo(f"向量 {info['vectors']}：{info['count']} 家企业，嵌入器 {info['embedder']}")


@index_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def index_status(as_json: bool) -> None:
    """Show the active embedder and the index: dimension, size, kind, watermark, and whether it is stale."""
    from webapp.services import match as matchsvc

    info = matchsvc.active_embedder_info(current_app._get_current_object(), db.session)
    if as_json:
        _echo_json(info)
        return
    for key in (
        "embedder",
        "model",
        "configured_model",
        "vectors",
        "embedding",
        "dim",
        "count",
        "kind",
        "built_at",
        "synced_at",
        "watermark",
        "status",
        "stale",
        "folder",
    ):
        click.echo(f"{key}: {info.get(key)}")


@init_step(35, "准备嵌入模型")
def prepare_embedding_model(app, demo_accounts: bool = False) -> None:
    """Convert the bundled model (once) and export it to ONNX (once), so the index build and the web workers only
    load it. Nothing is downloaded; the built-in embedder needs nothing."""
    import time

    from matching.embedders import is_builtin
    from webapp.services.match.embedding import configured_model, embedder_for, model_label

    if is_builtin(configured_model(app)):
        click.echo("  内置 LSA 嵌入器，无需准备模型")
        return
    began = time.perf_counter()
    embedder = embedder_for(app)
    click.echo(f"  {model_label(app)} → {embedder.name}（{time.perf_counter() - began:.1f} 秒）")


@init_step(40, "构建匹配索引")
def build_match_index(app, demo_accounts: bool = False) -> None:
    """Load or build the match index and sync it with the database (idempotent)."""
    from webapp.services import match as matchsvc

    result = matchsvc.sync(db.session, app)
    embed_pending(app)
    info = matchsvc.active_embedder_info(app)
    click.echo(f"  索引：{'重建' if result.rebuilt else '已同步'}，嵌入器 {info['embedder']}（{info['model']}）")


COMMANDS = [match_command, index_group]
