"""`chainmatch chains|clusters|gaps|lists|evaluate …`: chain maps, clusters, gap analysis, N lists, evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from webapp.cli.init import init_step
from webapp.extensions import db

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
CHAINS_DATA_DIR = DATA_DIR / "chains"
CLUSTERS_DATA_DIR = DATA_DIR / "clusters"


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _fail_with_errors(errors: list[tuple[str, int | None, str]], what: str) -> None:
    for file, line, message in errors:
        click.echo(f"{file}:{line if line else '-'}: {message}", err=True)
    raise click.ClickException(
        f"{len(errors)} 个错误，{what}未导入 ({len(errors)} error(s); rejected files were not imported)"
    )


def _yaml_files_present(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix in (".yaml", ".yml") for p in folder.iterdir())


# ----------------------------------------------------------------------------- chains


@click.group("chains")
def chains_group() -> None:
    """Chain maps (产业链图谱): import, list, export."""


def _audit_imports(action: str, object_type: str, items: list[tuple[str, dict]]) -> None:
    """One audit-log entry (user "cli") per imported chain map or cluster."""
    from webapp.services.audit import record

    for object_id, detail in items:
        record(action, object_type, object_id, **detail)
    if items:
        db.session.commit()


def _import_chains(path: Path, as_json: bool = False) -> None:
    from chains.chainmap_io import import_chain_path

    results, errors = import_chain_path(db.session, path)
    _audit_imports(
        "chain.import", "chain", [(r.chain_id, {"version": r.version, "unchanged": r.unchanged}) for r in results]
    )
    if as_json:
        _echo_json([r.__dict__ for r in results])
    else:
        for r in results:
            state = "未变化 (unchanged)" if r.unchanged else f"新版本 v{r.version} (new version)"
            click.echo(f"{r.chain_id}: {r.links} 个环节，{state}")
    if errors:
        _fail_with_errors(errors, "有错误的文件")


@chains_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@with_appcontext
def chains_import(path: Path, as_json: bool) -> None:
    """Import a chain map YAML file, or every YAML file of a folder (each file all-or-nothing).

    Each file is validated whole (errors print file:line: message, exit code 1; format: docs/chain-format.md) and
    imported in one transaction; unchanged content is a no-op, changed content becomes a new version.
    """
    if not path.exists():
        raise click.ClickException(f"路径不存在 (no such file or folder): {path}")
    _import_chains(path, as_json)


@chains_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: [{id, name, links, depth}].")
@with_appcontext
def chains_list(as_json: bool) -> None:
    """List chains with their link count and depth (levels) of the current version."""
    from chains.chainmap_io import chain_summaries

    rows = chain_summaries(db.session)
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']}\t{r['name']}\tv{r['version']}\t{r['links']} 个环节\t{r['depth']} 层")


@chains_group.command("export")
@click.argument("chain_id")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--version", "version_number", type=int, default=None, help="Version number (default: current).")
@with_appcontext
def chains_export(chain_id: str, path: Path, version_number: int | None) -> None:
    """Export a chain version to YAML that re-imports to the same content."""
    from chains.chainmap_io import export_chain_yaml

    try:
        text = export_chain_yaml(db.session, chain_id, version_number)
    except KeyError:
        raise click.ClickException(f"产业链或版本不存在 (unknown chain or version): {chain_id}")
    path.write_text(text, encoding="utf-8")
    click.echo(f"已导出 {chain_id} → {path}")


# ----------------------------------------------------------------------------- clusters


@click.group("clusters")
def clusters_group() -> None:
    """Industrial clusters (产业集聚区): import and list."""


def _import_clusters(path: Path, as_json: bool = False) -> None:
    from chains.cluster_io import import_cluster_path

    results, errors = import_cluster_path(db.session, path)
    _audit_imports("cluster.import", "cluster", [(r.cluster_id, {"created": r.created}) for r in results])
    if as_json:
        _echo_json([r.__dict__ for r in results])
    else:
        for r in results:
            click.echo(
                f"{r.cluster_id}: {'新建' if r.created else '更新'}，{r.chains} 条产业链，"
                f"{r.roster} 家企业，{r.assignments} 个环节归属，{r.projects} 个项目"
            )
    if errors:
        _fail_with_errors(errors, "有错误的文件")


@clusters_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@with_appcontext
def clusters_import(path: Path, as_json: bool) -> None:
    """Import a cluster YAML file or folder (chains and firms must be loaded first)."""
    if not path.exists():
        raise click.ClickException(f"路径不存在 (no such file or folder): {path}")
    _import_clusters(path, as_json)


@clusters_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: [{id, name, chains, firms}].")
@with_appcontext
def clusters_list(as_json: bool) -> None:
    """List clusters with their chains and number of roster firms."""
    from chains.cluster_io import cluster_summaries

    rows = cluster_summaries(db.session)
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']}\t{r['name']}\t{','.join(r['chains'])}\t{r['firms']} 家企业")


# ----------------------------------------------------------------------------- gaps / lists / evaluate


def _cluster_or_fail(cluster_id: str):
    from chains.cluster_models import Cluster

    cluster = db.session.get(Cluster, cluster_id)
    if cluster is None:
        raise click.ClickException(f"集聚区不存在 (unknown cluster): {cluster_id}")
    return cluster


def _chain_of_cluster_or_fail(cluster, chain_id: str) -> None:
    if chain_id not in cluster.chain_ids:
        raise click.ClickException(
            f"产业链 {chain_id} 不属于集聚区 {cluster.id} (chain not in cluster; chains: {', '.join(cluster.chain_ids)})"
        )


@click.command("gaps")
@click.argument("cluster_id")
@click.option("--chain", "chain_id", default=None, help="Only this chain of the cluster.")
@click.option("--json", "as_json", is_flag=True, help="Print the full analysis as JSON.")
@with_appcontext
def gaps_command(cluster_id: str, chain_id: str | None, as_json: bool) -> None:
    """Gap analysis (空白/薄弱/一般/优势 links, 本地配套率) of a cluster's chains."""
    from chains.gaps import analyze_cluster, chain_gap_dict

    cluster = _cluster_or_fail(cluster_id)
    if chain_id:
        _chain_of_cluster_or_fail(cluster, chain_id)
    gaps = analyze_cluster(db.session, cluster_id, chain_id)
    if as_json:
        _echo_json({"cluster": {"id": cluster.id, "name": cluster.name}, "chains": [chain_gap_dict(g) for g in gaps]})
        return
    for g in gaps:
        r = g.rollup
        rate = "-" if r.local_rate is None else f"{r.local_rate:.0%}"
        click.echo(
            f"{g.chain_id} {g.chain_name}: {r.links} 个环节（叶子 {r.leaf_links}），本地配套率 {rate}；"
            + "，".join(f"{s} {n}" for s, n in r.counts.items())
        )
        for link in g.links:
            click.echo(f"  {'  ' * (link.depth - 1)}{link.name} [{link.stage}] {link.status} {link.firm_count} 家")


@click.command("lists")
@click.argument("cluster_id")
@click.option("--chain", "chain_id", required=True, help="Chain of the cluster.")
@click.option(
    "--export",
    "export_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the lists to PATH.xlsx (one sheet per list) or PATH.csv.",
)
@click.option(
    "--list",
    "list_types",
    multiple=True,
    help="Only these lists (leaders, suppliers, weak_links, strong_links, targets, projects, key_tech); repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the lists as JSON.")
@with_appcontext
def lists_command(
    cluster_id: str, chain_id: str, export_path: Path | None, list_types: tuple[str, ...], as_json: bool
) -> None:
    """Refresh and show or export the N lists (N张清单) of a cluster × chain.

    Curation is kept; --export writes .xlsx (one sheet per list) or .csv.
    """
    from chains.list_export import export_lists, list_table
    from chains.lists import LIST_TYPES, refresh_lists

    cluster = _cluster_or_fail(cluster_id)
    _chain_of_cluster_or_fail(cluster, chain_id)
    unknown = [t for t in list_types if t not in LIST_TYPES]
    if unknown:
        raise click.ClickException(f"未知清单 (unknown list): {', '.join(unknown)}；可选：{', '.join(LIST_TYPES)}")
    counts = refresh_lists(db.session, cluster_id, chain_id)
    _audit_imports("list.refresh", "chain", [(chain_id, {"cluster_id": cluster_id})])
    types = list(list_types) or list(LIST_TYPES)
    if export_path is not None:
        try:
            written = export_lists(db.session, cluster_id, chain_id, str(export_path), types)
        except ValueError as exc:
            raise click.ClickException(str(exc))
        for path in written:
            click.echo(f"已导出 → {path}")
        return
    if as_json:
        out = []
        for t in types:
            headers, rows = list_table(db.session, cluster_id, chain_id, t)
            out.append({"list": t, "name": LIST_TYPES[t], "headers": headers, "rows": rows})
        _echo_json(out)
        return
    for t in types:
        click.echo(f"{LIST_TYPES[t]}：{counts[t]} 条")


@click.command("evaluate")
@click.argument("cluster_id")
@click.option("--json", "as_json", is_flag=True, help="Print the rule results as JSON.")
@with_appcontext
def evaluate_command(cluster_id: str, as_json: bool) -> None:
    """Evaluate a cluster against the policy rules (集聚度, 投资强度, 亩均税收, counts per province/city)."""
    from chains.evaluation import evaluate_cluster

    _cluster_or_fail(cluster_id)
    ev = evaluate_cluster(db.session, cluster_id)
    if as_json:
        _echo_json([{**r.as_dict(), "pass": r.passed} for r in ev.rules])
        return
    mark = {True: "✓", False: "✗", None: "?"}
    click.echo(f"{ev.cluster_name}（{ev.year or '无'} 年数据）")
    for r in ev.rules:
        click.echo(f"{mark[r.passed]} {r.name}：{r.explanation}")


# ----------------------------------------------------------------------------- init steps

BROWSER_CLUSTER_ACTIONS = (
    "cluster.create",
    "cluster.edit",
    "cluster.indicators",
    "cluster.roster_add",
    "cluster.roster_remove",
)


def _file_id(path: Path) -> str | None:
    """The top-level `id:` of a YAML file (None when unreadable; the import then reports the file)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return str(doc.get("id")) if isinstance(doc, dict) and doc.get("id") else None


def _bundled(folder: Path, kept: set[str], what: str) -> list[Path]:
    """The bundled files to load: those whose object was not since edited in the browser (`kept`)."""
    from chains.chainmap_io import chain_files

    files = []
    for file in chain_files(folder):
        if _file_id(file) in kept:
            click.echo(
                f"  {_file_id(file)}：已在浏览器中编辑过的{what}，保留在线版本，跳过 {file.name} (edited in the browser: kept)"
            )
        else:
            files.append(file)
    return files


def browser_edited_chains() -> set[str]:
    """Chains whose current version was written in the browser (edit, upload, restore)."""
    from sqlalchemy import select

    from chains.chain_models import Chain, ChainVersion

    return set(
        db.session.scalars(
            select(Chain.id)
            .join(ChainVersion, ChainVersion.id == Chain.current_version_id)
            .where(ChainVersion.kind != "import")
        )
    )


def browser_edited_clusters() -> set[str]:
    """Clusters created or changed in the browser (per the audit log)."""
    from sqlalchemy import select

    from webapp.services.audit.models import AuditEntry

    return set(
        db.session.scalars(
            select(AuditEntry.cluster_id)
            .distinct()
            .where(AuditEntry.action.in_(BROWSER_CLUSTER_ACTIONS), AuditEntry.cluster_id.is_not(None))
        )
    )


@init_step(10, "加载内置产业链图谱")
def load_bundled_chains(app, demo_accounts: bool = False) -> None:
    """Import data/chains (unchanged files are no-ops; maps edited in the browser are kept)."""
    if not _yaml_files_present(CHAINS_DATA_DIR):
        click.echo(f"  {CHAINS_DATA_DIR} 中没有产业链图谱文件，跳过 (no bundled chain maps)")
        return
    for file in _bundled(CHAINS_DATA_DIR, browser_edited_chains(), "产业链图谱"):
        _import_chains(file)


@init_step(30, "加载内置产业集聚区")
def load_bundled_clusters(app, demo_accounts: bool = False) -> None:
    """Import data/clusters (after the demo firms); clusters edited in the browser are kept."""
    if not _yaml_files_present(CLUSTERS_DATA_DIR):
        click.echo(f"  {CLUSTERS_DATA_DIR} 中没有产业集聚区文件，跳过 (no bundled clusters)")
        return
    for file in _bundled(CLUSTERS_DATA_DIR, browser_edited_clusters(), "产业集聚区"):
        _import_clusters(file)


COMMANDS = [chains_group, clusters_group, gaps_command, lists_command, evaluate_command]
