"""`chainmatch firms …` (import, export, stats) and `chainmatch demo synth`; init step 20 loads the demo firms."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from chains.enterprise_models import Enterprise
from chains.enterprises import synth
from chains.enterprises.exporter import export_enterprises
from chains.enterprises.importer import import_file
from chains.enterprises.readers import TableReadError
from webapp.cli.init import init_step
from webapp.extensions import db

DEMO_FIRMS_CSV = Path(__file__).resolve().parents[2] / "data" / "enterprises" / "demo_firms.csv"


def _tqdm_progress(enabled: bool):
    """A progress callback drawing a tqdm bar on stderr, and a function closing it."""
    from tqdm import tqdm

    bar = {"obj": None}

    def progress(done: int, total: int) -> None:
        if bar["obj"] is None:
            bar["obj"] = tqdm(total=total, unit="行", file=sys.stderr, disable=not enabled, desc="导入")
        bar["obj"].update(done - bar["obj"].n)

    def close() -> None:
        if bar["obj"] is not None:
            bar["obj"].close()

    return progress, close


@click.group("firms")
def firms_group() -> None:
    """Enterprise registry: import, export and statistics."""


@firms_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the row-level report (line, identity, outcome, reason) to this CSV file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the counts as JSON on stdout.")
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON file mapping this file\'s column headers to fields, e.g. {"公司": "企业名称"}.',
)
@with_appcontext
def firms_import(path: Path, report_path: Path | None, as_json: bool, mapping: Path | None) -> None:
    """Import enterprises from a CSV or XLSX file (one transaction; re-importing changes nothing).

    CSV in UTF-8 (with or without BOM), GBK or GB18030, or XLSX. Identity is the 统一社会信用代码, else 外部编号, else name +
    city; --json prints {inserted, updated, unchanged, rejected, duplicates_merged}.
    """
    if not path.exists():
        raise click.ClickException(f"文件不存在：{path}")
    progress, close = _tqdm_progress(enabled=True)
    try:
        result = import_file(
            db.session, path, mapping=str(mapping) if mapping else None, report_path=report_path, progress=progress
        )
    except TableReadError as exc:
        raise click.ClickException(f"无法读取 {path.name}：{exc}") from None
    finally:
        close()
    counts = result.counts()
    from webapp.services.audit import record

    record("enterprise.import", "file", path.name, **counts)
    db.session.commit()
    if as_json:
        click.echo(json.dumps(counts, ensure_ascii=False))
        return
    click.echo(f"{path.name}：读取 {result.total_rows} 行（编码 {result.encoding}）")
    click.echo(
        "新增 {inserted}，更新 {updated}，无变化 {unchanged}，拒绝 {rejected}，合并重复 {duplicates_merged}".format(
            **counts
        )
    )
    if result.unmapped_columns:
        click.echo("未识别的列（已忽略）：" + "、".join(result.unmapped_columns))
    for row in [r for r in result.report if r.outcome == "rejected"][:10]:
        click.echo(f"  第{row.line}行 拒绝：{row.reason}")
    if report_path:
        click.echo(f"逐行报告：{report_path}")


@firms_group.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def firms_export(path: Path) -> None:
    """Export every enterprise to PATH.csv or PATH.xlsx (formula-like cells escaped)."""
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise click.ClickException("导出文件须以 .csv 或 .xlsx 结尾")
    count = export_enterprises(db.session, path)
    click.echo(f"已导出 {count} 家企业到 {path}")


def registry_stats(session) -> dict:
    """Totals by province and status, and how many are synthetic or demo records."""

    def grouped(column) -> dict[str, int]:
        rows = session.execute(select(column, func.count()).group_by(column).order_by(column))
        return {(key or "未知"): n for key, n in rows}

    count = lambda *where: session.scalar(select(func.count()).select_from(Enterprise).where(*where)) or 0  # noqa: E731
    return {
        "total": count(),
        "by_province": grouped(Enterprise.province),
        "by_status": grouped(Enterprise.status),
        "synthetic": count(Enterprise.is_synthetic.is_(True)),
        "demo": count(Enterprise.is_demo.is_(True)),
    }


@firms_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@with_appcontext
def firms_stats(as_json: bool) -> None:
    """Count enterprises by province and status; synthetic and demo records."""
    stats = registry_stats(db.session)
    if as_json:
        click.echo(json.dumps(stats, ensure_ascii=False))
        return
    click.echo(f"企业总数 {stats['total']}（演示 {stats['demo']}，合成 {stats['synthetic']}）")
    for title, key in (("按省份", "by_province"), ("按登记状态", "by_status")):
        click.echo(title + "：" + "，".join(f"{k} {v}" for k, v in stats[key].items()))


def _firm_by_key(key: str):
    """A firm by 统一社会信用代码, 外部编号 or id."""
    from sqlalchemy import or_

    conds = [Enterprise.credit_code == key.upper(), Enterprise.external_id == key]
    if key.isdigit() and int(key) < 2**31:
        conds.append(Enterprise.id == int(key))
    return db.session.scalars(select(Enterprise).where(or_(*conds)).order_by(Enterprise.id)).first()


@firms_group.command("set-parent")
@click.argument("child")
@click.argument("parent", required=False, default="")
@with_appcontext
def firms_set_parent(child: str, parent: str) -> None:
    """Record CHILD's parent company PARENT (credit code, 外部编号 or id; omit PARENT to clear): the lead register
    treats a group as one target."""
    firm = _firm_by_key(child)
    if firm is None:
        raise click.ClickException(f"企业 {child} 不存在 (unknown firm)")
    owner = _firm_by_key(parent) if parent else None
    if parent and owner is None:
        raise click.ClickException(f"企业 {parent} 不存在 (unknown firm)")
    if owner is not None and (owner.id == firm.id or owner.parent_id == firm.id):
        raise click.ClickException("母公司不能是该企业自身或其子公司 (a firm cannot be its own group parent)")
    firm.parent_id = owner.id if owner else None
    db.session.commit()
    click.echo(f"{firm.name} → {owner.name if owner else '（无母公司）'}")


@click.group("demo")
def demo_group() -> None:
    """Demo and synthetic data."""


@demo_group.command("synth")
@click.option("--n", "n", type=click.IntRange(min=0), default=1000, show_default=True, help="Number of enterprises.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same output).")
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="CSV file to write; default stdout."
)
def demo_synth(n: int, seed: int, out: Path | None) -> None:
    """Generate N synthetic enterprises (labelled 合成数据) as CSV in the demo_firms.csv format."""
    rows = synth.generate(n, seed)
    if out is None:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=synth.CSV_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    synth.write_csv(rows, out)
    click.echo(f"已生成 {n} 家合成企业：{out}", err=True)


@init_step(20, "加载演示企业")
def load_demo_firms(app, demo_accounts: bool = False) -> None:
    """Import data/enterprises/demo_firms.csv when present (idempotent: a re-run leaves it unchanged)."""
    if not DEMO_FIRMS_CSV.exists():
        click.echo("  （未找到 data/enterprises/demo_firms.csv，跳过）")
        return
    try:
        result = import_file(db.session, DEMO_FIRMS_CSV)
    except TableReadError as exc:
        raise click.ClickException(f"演示企业文件无法读取：{exc}") from None
    click.echo("  新增 {inserted}，更新 {updated}，无变化 {unchanged}，拒绝 {rejected}".format(**result.counts()))


COMMANDS = [firms_group, demo_group]
