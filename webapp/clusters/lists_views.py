"""N张清单 pages: tabs per list, pin / remove / restore / note per row (htmx), history, Excel and CSV export."""

from __future__ import annotations

import logging
from datetime import date

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from chains import list_export
from chains import lists as list_service
from chains.excel import XLSX_MIMETYPE
from chains.list_models import ENTRY_DERIVED, ListChange, ListEntry
from webapp.auth.roles import STAFF_ROLES, role_required
from webapp.clusters import bp
from webapp.clusters.views import chain_names_of, get_chain
from webapp.extensions import db
from webapp.web.common import get_cluster, wants_fragment
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.clusters")

ROW_ACTIONS = ("pin", "unpin", "remove", "restore", "note")
ACTION_LABELS = {"add": "加入", "pin": "置顶", "unpin": "取消置顶", "remove": "移除", "restore": "恢复", "note": "备注"}
MAX_NOTE = 2000


def _list_type(value: str | None) -> str:
    if not value:
        return next(iter(list_service.LIST_TYPES))
    if value not in list_service.LIST_TYPES:
        abort(404)
    return value


def _has_derived_entries(cluster_id: str, chain_id: str) -> bool:
    """Whether the derived lists were materialised (targets added by leads do not count)."""
    return (
        db.session.scalar(
            select(ListEntry.id)
            .where(
                ListEntry.cluster_id == cluster_id, ListEntry.chain_id == chain_id, ListEntry.source == ENTRY_DERIVED
            )
            .limit(1)
        )
        is not None
    )


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return "、".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def _row_context(cluster, chain, list_type: str) -> dict:
    return {
        "cluster": cluster,
        "chain": chain,
        "list_type": list_type,
        "columns": list_export.COLUMNS[list_type],
        "cell": _cell,
    }


@bp.route("/<cluster_id>/chains/<chain_id>/lists")
@role_required(*STAFF_ROLES)
def lists(cluster_id: str, chain_id: str):
    cluster = get_cluster(cluster_id)
    chain = get_chain(cluster, chain_id)
    list_type = _list_type(request.args.get("list"))
    if not _has_derived_entries(cluster_id, chain_id):
        # First visit: materialise the derived lists once (curation is kept on later refreshes).
        list_service.refresh_lists(db.session, cluster_id, chain_id)
    show_removed = request.args.get("removed") == "1"
    entries = list_service.get_list(db.session, cluster_id, chain_id, list_type, include_removed=show_removed)
    counts = {t: len(list_service.get_list(db.session, cluster_id, chain_id, t)) for t in list_service.LIST_TYPES}
    return render_template(
        "clusters/lists.html",
        entries=entries,
        list_types=list_service.LIST_TYPES,
        counts=counts,
        show_removed=show_removed,
        chain_names=chain_names_of(cluster),
        **_row_context(cluster, chain, list_type),
    )


@bp.route("/<cluster_id>/chains/<chain_id>/lists/refresh", methods=["POST"])
@role_required(*STAFF_ROLES)
def lists_refresh(cluster_id: str, chain_id: str):
    cluster = get_cluster(cluster_id)
    get_chain(cluster, chain_id)
    list_service.refresh_lists(db.session, cluster_id, chain_id, commit=False)
    audit("list.refresh", "chain", chain_id, cluster_id=cluster_id)
    db.session.commit()
    logger.info("user %s refreshed lists of %s / %s", current_user.id, cluster_id, chain_id)
    flash("清单已根据最新的企业归位和缺口分析重新生成，置顶、移除和备注均已保留。", "success")
    return redirect(
        url_for("clusters.lists", cluster_id=cluster_id, chain_id=chain_id, list=request.form.get("list") or None)
    )


@bp.route("/<cluster_id>/chains/<chain_id>/lists/entries/<int:entry_id>/<action>", methods=["POST"])
@role_required(*STAFF_ROLES)
def list_entry_action(cluster_id: str, chain_id: str, entry_id: int, action: str):
    cluster = get_cluster(cluster_id)
    chain = get_chain(cluster, chain_id)
    if action not in ROW_ACTIONS:
        abort(404)
    entry = db.session.get(ListEntry, entry_id)
    if entry is None or entry.cluster_id != cluster_id or entry.chain_id != chain_id:
        abort(404)
    error = None
    if action == "note":
        note = request.form.get("note", "")
        if len(note) > MAX_NOTE:
            error = f"备注不能超过 {MAX_NOTE} 个字符"
        else:
            list_service.set_note(db.session, entry_id, note, current_user)
    else:
        getattr(list_service, action)(db.session, entry_id, current_user)
    if not error:
        audit(f"list.{action}", "list_entry", entry_id, cluster_id=cluster_id, list_type=entry.list_type)
        db.session.commit()
    db.session.refresh(entry)
    if wants_fragment():
        return render_template(
            "clusters/_list_row.html", entry=entry, error=error, **_row_context(cluster, chain, entry.list_type)
        ), 400 if error else 200
    if error:
        flash(error, "error")
    else:
        flash(f"已{ACTION_LABELS[action]}", "success")
    return redirect(
        url_for(
            "clusters.lists",
            cluster_id=cluster_id,
            chain_id=chain_id,
            list=entry.list_type,
            removed="1" if entry.removed else None,
        )
    )


@bp.route("/<cluster_id>/chains/<chain_id>/lists/<list_type>/history")
@role_required(*STAFF_ROLES)
def list_history(cluster_id: str, chain_id: str, list_type: str):
    cluster = get_cluster(cluster_id)
    chain = get_chain(cluster, chain_id)
    list_type = _list_type(list_type)
    rows = db.session.execute(
        select(ListChange, ListEntry)
        .join(ListEntry, ListEntry.id == ListChange.entry_id)
        .where(ListEntry.cluster_id == cluster_id, ListEntry.chain_id == chain_id, ListEntry.list_type == list_type)
        .order_by(ListChange.changed_at.desc(), ListChange.id.desc())
    ).all()
    return render_template(
        "clusters/list_history.html",
        cluster=cluster,
        chain=chain,
        list_type=list_type,
        list_name=list_service.LIST_TYPES[list_type],
        rows=rows,
        action_labels=ACTION_LABELS,
        chain_names=chain_names_of(cluster),
    )


def _download_name(cluster, chain, suffix: str, list_type: str | None = None) -> str:
    label = list_service.LIST_TYPES[list_type] if list_type else "产业链清单"
    return f"{cluster.name}_{chain.name}_{label}_{date.today().isoformat()}.{suffix}"


@bp.route("/<cluster_id>/chains/<chain_id>/lists/export.xlsx")
@role_required(*STAFF_ROLES)
def lists_export_xlsx(cluster_id: str, chain_id: str):
    cluster = get_cluster(cluster_id)
    chain = get_chain(cluster, chain_id)
    list_type = request.args.get("list")
    types = [_list_type(list_type)] if list_type else None
    data = list_export.list_xlsx_bytes(db.session, cluster_id, chain_id, types)
    _audit_export(cluster_id, chain_id, "xlsx", types or list(list_service.LIST_TYPES))
    return _attachment(
        data,
        XLSX_MIMETYPE,
        _download_name(cluster, chain, "xlsx", list_type if types else None),
    )


@bp.route("/<cluster_id>/chains/<chain_id>/lists/<list_type>/export.csv")
@role_required(*STAFF_ROLES)
def lists_export_csv(cluster_id: str, chain_id: str, list_type: str):
    cluster = get_cluster(cluster_id)
    chain = get_chain(cluster, chain_id)
    list_type = _list_type(list_type)
    text = list_export.list_csv_text(db.session, cluster_id, chain_id, list_type)
    _audit_export(cluster_id, chain_id, "csv", [list_type])
    # The BOM lets Excel open the UTF-8 Chinese text correctly.
    return _attachment(
        ("\ufeff" + text).encode("utf-8"), "text/csv; charset=utf-8", _download_name(cluster, chain, "csv", list_type)
    )


def _audit_export(cluster_id: str, chain_id: str, file_format: str, list_types: list[str]) -> None:
    """A bulk export is an audit entry of its own (committed now: an export changes nothing else)."""
    audit("list.export", "chain", chain_id, cluster_id=cluster_id, format=file_format, lists=list_types)
    db.session.commit()


def _attachment(data: bytes, mimetype: str, filename: str) -> Response:
    from urllib.parse import quote

    response = Response(data, mimetype=mimetype)
    ascii_name = "chainmatch-export." + filename.rsplit(".", 1)[-1]
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    )
    return response
