"""`chainmatch match …` (ranked candidates for a link) and `chainmatch index …` (build / status of the match index)."""
from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext

from webapp.commands.init import init_step
from webapp.extensions import db


def _echo_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.command("match")
@click.argument("cluster_id")
@click.argument("link_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--top", default=20, show_default=True, help="How many candidates to print.")
@click.option("--offset", default=0, show_default=True, help="Skip this many candidates (paging).")
@click.option("--province", "provinces", multiple=True, help="Only firms in this province (repeatable).")
@click.option("--city", "cities", multiple=True, help="Only firms in this city (repeatable).")
@click.option("--country", "countries", multiple=True, help="Only firms in this country (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only firms with any of these tags, e.g. 专精特新 (repeatable).")
@click.option("--capital-min", type=float, help="Minimum registered capital, 万元人民币.")
@click.option("--capital-max", type=float, help="Maximum registered capital, 万元人民币.")
@click.option("--employees-min", type=int, help="Minimum number of insured employees.")
@click.option("--employees-max", type=int, help="Maximum number of insured employees.")
@click.option("--include-cluster-firms", is_flag=True, help="Keep firms already on the cluster's roster.")
@click.option("--exclude-city", is_flag=True, help="Leave out firms in the cluster's own city.")
@click.option("--exclude-province", is_flag=True, help="Leave out firms in the cluster's own province.")
@click.option("--any-status", is_flag=True, help="Include firms that are not 存续/在业.")
@with_appcontext
def match_command(cluster_id: str, link_id: str, as_json: bool, top: int, offset: int, provinces, cities, countries,
                  tags, capital_min, capital_max, employees_min, employees_max, include_cluster_firms: bool,
                  exclude_city: bool, exclude_province: bool, any_status: bool) -> None:
    """Rank candidate firms for link LINK_ID of cluster CLUSTER_ID, with the reasons for each."""
    from webapp import matchsvc

    matchsvc.sync(db.session)  # the CLI may wait for the index; web requests never do
    filters = matchsvc.CandidateFilters(
        exclude_cluster_firms=not include_cluster_firms, exclude_cluster_city=exclude_city,
        exclude_cluster_province=exclude_province, provinces=tuple(provinces), cities=tuple(cities),
        countries=tuple(countries), tags=tuple(tags), active_only=not any_status, capital_min=capital_min,
        capital_max=capital_max, employees_min=employees_min, employees_max=employees_max,
    )
    try:
        page = matchsvc.candidates(db.session, cluster_id, link_id, filters, k=top, offset=offset)
    except matchsvc.MatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(page.as_dict())
        return
    click.echo(f"{page.link.name} ({page.link.key}) — 嵌入器 {page.embedder}")
    if page.message:
        click.echo(page.message)
    for c in page.items:
        click.echo(f"{c.rank:>3}. {c.name}  [{c.region}]  匹配度 {c.score:.3f}")
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
    """Build the match index, or bring it up to date with the database."""
    from tqdm import tqdm

    from webapp import matchsvc

    bar = tqdm(total=0, unit="家", desc="构建匹配索引", disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        if full:
            result = matchsvc.rebuild(current_app._get_current_object(), db.session, progress, reason="requested")
        else:
            result = matchsvc.sync(db.session, progress=progress)
    finally:
        bar.close()
    info = matchsvc.active_embedder_info(current_app._get_current_object(), db.session)
    if result.rebuilt:
        click.echo(f"已重建索引：{info['count']} 家企业（{result.reason or 'rebuild'}）")
    else:
        click.echo(f"索引已同步：新增/更新 {result.added} 家，删除 {result.removed} 家，共 {info['count']} 家")
    click.echo(f"嵌入器 {info['embedder']}（维度 {info['dim']}，{info['kind']}）")


@index_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def index_status(as_json: bool) -> None:
    """Show the active embedder and the index: dimension, size, kind, watermark, and whether it is stale."""
    from webapp import matchsvc

    info = matchsvc.active_embedder_info(current_app._get_current_object(), db.session)
    if as_json:
        _echo_json(info)
        return
    for key in ("embedder", "configured_model", "dim", "count", "kind", "built_at", "synced_at", "watermark",
                "status", "stale", "folder"):
        click.echo(f"{key}: {info.get(key)}")


@init_step(40, "构建匹配索引")
def build_match_index(app, demo_accounts: bool = False) -> None:
    """Load or build the match index and sync it with the database (idempotent)."""
    from webapp import matchsvc

    result = matchsvc.sync(db.session, app)
    click.echo(f"  索引：{'重建' if result.rebuilt else '已同步'}，嵌入器 {matchsvc.active_embedder_info(app)['embedder']}")


COMMANDS = [match_command, index_group]
