"""Chain map versions: the list, the diff between any two, restore (admins), YAML download and upload."""

from __future__ import annotations

import logging

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from chains.chain_models import Chain, ChainVersion
from chains.chainmap_diff import diff_versions
from chains.chainmap_edit import (
    KIND_LABELS,
    KIND_RESTORE,
    KIND_UPLOAD,
    ChainDraft,
    save_draft,
    save_text,
    version_of,
)
from chains.chainmap_io import export_chain_yaml, import_parsed_chain
from chains.chainmap_parse import ChainMapError, parse_chain_text
from webapp.auth.models import ROLE_ADMIN
from webapp.auth.roles import STAFF_ROLES, role_required
from webapp.chainmaps import bp
from webapp.chainmaps.access import (
    EDIT_ROLES,
    can_edit_chain,
    chain_for,
    clusters_using,
)
from webapp.chainmaps.views import wants_fragment
from webapp.extensions import db
from webapp.leads.attention import attention_items
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.chainmaps")
MAX_YAML_BYTES = 2 * 1024 * 1024


def _numbers(chain: Chain) -> tuple[int, int]:
    """The two versions to compare: ?a=&b=, by default the previous and the current one."""
    current = chain.current_version.version
    b = request.args.get("b", current, type=int)
    a = request.args.get("a", max(1, b - 1), type=int)
    return a, b


def _diff_context(chain: Chain) -> dict:
    a, b = _numbers(chain)
    old, new = version_of(db.session, chain.id, a), version_of(db.session, chain.id, b)
    if old is None or new is None:
        abort(404)
    return {"chain": chain, "a": a, "b": b, "diff": diff_versions(old, new)}


@bp.route("/<chain_id>/versions")
@role_required(*STAFF_ROLES)
def versions(chain_id: str):
    chain = chain_for(chain_id)
    context = _diff_context(chain)
    if wants_fragment():
        return render_template("chainmaps/_diff.html", **context)
    rows = list(
        db.session.scalars(
            select(ChainVersion).where(ChainVersion.chain_id == chain_id).order_by(ChainVersion.version.desc())
        )
    )
    visible = [c.id for c in clusters_using(chain_id) if current_user.can_access_cluster(c.id)]
    return render_template(
        "chainmaps/versions.html",
        rows=rows,
        kind_labels=KIND_LABELS,
        can_edit=can_edit_chain(chain_id),
        can_restore=current_user.role == ROLE_ADMIN,
        attention=attention_items(db.session, chain_id, visible),
        **context,
    )


@bp.route("/<chain_id>/versions/<int:number>/restore", methods=["POST"])
@role_required(ROLE_ADMIN)
def restore(chain_id: str, number: int):
    chain = chain_for(chain_id, edit=True)
    old = version_of(db.session, chain_id, number)
    if old is None:
        abort(404)
    reason = request.form.get("reason", "").strip()[:500] or f"恢复到第 {number} 版"
    try:
        result = save_draft(
            db.session, ChainDraft.of(old), current_user.id, current_user.username, reason, kind=KIND_RESTORE
        )
    except ChainMapError as exc:  # e.g. a link id since taken by another chain
        db.session.rollback()
        for _, _, message in exc.errors:
            flash(message, "error")
        return redirect(url_for("chainmaps.versions", chain_id=chain_id))
    if result.unchanged:
        flash(f"第 {number} 版与当前版本内容相同，未生成新版本。", "info")
    else:
        audit("chain.restore", "chain", chain_id, version=result.version, restored=number, reason=reason)
        db.session.commit()
        logger.info("user %s restored chain %s version %s as %s", current_user.id, chain_id, number, result.version)
        flash(f"已将第 {number} 版恢复为第 {result.version} 版。", "success")
    return redirect(url_for("chainmaps.versions", chain_id=chain.id))


@bp.route("/<chain_id>/export.yaml")
@role_required(*STAFF_ROLES)
def export_yaml(chain_id: str):
    chain_for(chain_id)
    number = request.args.get("version", type=int)
    try:
        text = export_chain_yaml(db.session, chain_id, number)
    except KeyError:
        abort(404)
    name = f"{chain_id}-v{number}.yaml" if number else f"{chain_id}.yaml"
    return Response(
        text, mimetype="application/x-yaml", headers={"Content-Disposition": f"attachment; filename={name}"}
    )


def _uploaded_text() -> tuple[str, str] | None:
    """The uploaded YAML file's text and name, or None after flashing why not (Chinese)."""
    file = request.files.get("file")
    data = file.read(MAX_YAML_BYTES + 1) if file else b""
    if not data:
        flash("请选择要上传的 YAML 文件。", "error")
        return None
    if len(data) > MAX_YAML_BYTES:
        flash("文件过大：图谱 YAML 不能超过 2 MB。", "error")
        return None
    try:
        return data.decode("utf-8-sig"), (file.filename or "upload.yaml")[-120:]
    except UnicodeDecodeError:
        flash("文件不是 UTF-8 编码的文本，请另存为 UTF-8 后重试。", "error")
        return None


def _flash_errors(filename: str, exc: ChainMapError) -> None:
    flash(f"{filename} 未通过校验，未写入任何数据：", "error")
    for _, line, message in exc.errors:
        flash(f"第 {line} 行：{message}" if line else message, "error")


@bp.route("/<chain_id>/upload", methods=["POST"])
@role_required(*EDIT_ROLES)
def upload(chain_id: str):
    chain_for(chain_id, edit=True)
    back = redirect(url_for("chainmaps.editor", chain_id=chain_id))
    uploaded = _uploaded_text()
    if uploaded is None:
        return back
    text, filename = uploaded
    reason = request.form.get("reason", "").strip()[:500] or f"上传 {filename}"
    try:
        result = save_text(
            db.session, chain_id, text, filename, KIND_UPLOAD, current_user.id, current_user.username, reason
        )
    except ChainMapError as exc:
        db.session.rollback()
        _flash_errors(filename, exc)
        return back
    if result.unchanged:
        flash("上传的内容与当前版本相同，未生成新版本。", "info")
    else:
        audit("chain.upload", "chain", chain_id, version=result.version, file=filename, reason=reason)
        db.session.commit()
        logger.info("user %s uploaded chain %s as version %s", current_user.id, chain_id, result.version)
        flash(f"已上传并保存为第 {result.version} 版。", "success")
    return back


@bp.route("/new", methods=["POST"])
@role_required(ROLE_ADMIN)
def upload_new():
    back = redirect(url_for("chainmaps.index"))
    uploaded = _uploaded_text()
    if uploaded is None:
        return back
    text, filename = uploaded
    try:
        parsed = parse_chain_text(text, filename)
        if db.session.get(Chain, parsed.id) is not None:
            raise ChainMapError([(filename, 1, f"产业链 {parsed.id} 已存在，请在该产业链的编辑页上传新版本")])
        result = import_parsed_chain(
            db.session,
            parsed,
            commit=False,
            provenance={
                "kind": KIND_UPLOAD,
                "author_id": current_user.id,
                "author": current_user.username,
                "reason": request.form.get("reason", "").strip()[:500] or f"上传 {filename}",
            },
        )
    except ChainMapError as exc:
        db.session.rollback()
        _flash_errors(filename, exc)
        return back
    audit("chain.create", "chain", result.chain_id, version=result.version, file=filename)
    db.session.commit()
    logger.info("user %s created chain %s by upload", current_user.id, result.chain_id)
    flash(f"已新建产业链 {parsed.name}（{result.links} 个环节）。在集聚区的编辑页中选择它即可使用。", "success")
    return redirect(url_for("chainmaps.editor", chain_id=result.chain_id))
