"""The chain map editor: add, rename, move and delete links, edit their fields and the supply edges.

Every action is a plain form POST (works without JavaScript: flash and redirect back to the editor); with htmx the
same POST answers the editor fragment (`chainmaps/_editor.html`, also included by the full page). Each successful
action saves a new chain version with the author and the reason, and writes an audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from chains.chain_models import STAGES, Chain
from chains.chainmap_edit import ChainDraft, EditError, current_draft, save_draft
from chains.chainmap_parse import ChainMapError
from webapp.auth.roles import STAFF_ROLES, role_required
from webapp.chainmaps import bp
from webapp.chainmaps.access import (
    EDIT_ROLES,
    chain_for,
    clusters_using,
    visible_chains,
)
from webapp.extensions import db
from webapp.web import nav
from webapp.web.common import vary_on_htmx, wants_fragment
from webapp.web.integrations import audit

logger = logging.getLogger("chainmatch.chainmaps")

nav.register("chainmaps.index", "产业链维护", *STAFF_ROLES)
LINK_FORM_FIELDS = (
    "name",
    "stage",
    "description",
    "keywords",
    "synonyms",
    "products",
    "industry_codes",
    "key_tech_note",
)


bp.after_request(vary_on_htmx)  # the same URL returns a fragment or a full page


def editor_context(chain: Chain, message: str = "", error: list[str] | None = None) -> dict:
    """What the editor fragment shows: the current version's links in tree order, edges, clusters using the map."""
    version = chain.current_version
    links = sorted(version.links, key=lambda link: link.position)
    names = {link.key: link.name for link in links}
    edges = sorted(version.edges, key=lambda e: (e.from_key, e.to_key))
    return {
        "chain": chain,
        "version": version,
        "links": links,
        "names": names,
        "edges": edges,
        "stages": STAGES,
        "clusters": clusters_using(chain.id),
        "message": message,
        "errors": error or [],
    }


@bp.route("/")
@role_required(*STAFF_ROLES)
def index():
    return render_template("chainmaps/index.html", chains=visible_chains())


@bp.route("/<chain_id>/edit")
@role_required(*EDIT_ROLES)
def editor(chain_id: str):
    chain = chain_for(chain_id, edit=True)
    return render_template("chainmaps/editor.html", **editor_context(chain))


def _form_values(names: tuple[str, ...]) -> dict:
    values = {n: request.form.get(n, "") for n in names if n in request.form}
    if "key_tech_present" in request.form:  # the checkbox is absent from the form data when unticked
        values["key_tech"] = request.form.get("key_tech") == "1"
    return values


def apply_edit(chain_id: str, action: str, edit: Callable[[ChainDraft], str], anchor: str = ""):
    """Run one edit on the current draft, save it as a version by the current user, answer page or fragment."""
    chain = chain_for(chain_id, edit=True)
    draft = current_draft(db.session, chain_id)
    reason = request.form.get("reason", "").strip()[:500]
    errors: list[str] = []
    message = ""
    base = request.form.get("base", type=int)
    try:
        if base is not None and base != chain.current_version.version:
            # The form showed an older version whose values it would write back over someone else's edit.
            raise EditError(f"图谱已被其他用户修改（当前为第 {chain.current_version.version} 版），请核对后重新提交。")
        summary = edit(draft)
        result = save_draft(db.session, draft, current_user.id, current_user.username, reason or summary)
        if result.unchanged:
            message = "内容没有变化，未生成新版本。"
        else:
            audit(f"chain.{action}", "chain", chain_id, version=result.version, summary=summary, reason=reason)
            db.session.commit()
            logger.info("user %s saved chain %s version %s (%s)", current_user.id, chain_id, result.version, action)
            message = f"已保存为第 {result.version} 版：{summary}"
    except EditError as exc:
        db.session.rollback()
        errors = [str(exc)]
    except ChainMapError as exc:
        db.session.rollback()
        errors = [msg for _, _, msg in exc.errors]
    except IntegrityError:  # another save took the same version number a moment earlier
        db.session.rollback()
        logger.warning("concurrent save of chain %s by user %s refused", chain_id, current_user.id)
        errors = ["图谱刚被其他用户修改，请核对后重新提交。"]
    db.session.expire_all()
    chain = db.session.get(Chain, chain_id)
    if wants_fragment():
        return render_template("chainmaps/_editor.html", **editor_context(chain, message, errors))
    for text in errors:
        flash(text, "error")
    if message:
        flash(message, "success")
    return redirect(url_for("chainmaps.editor", chain_id=chain_id) + (f"#link-{anchor}" if anchor else ""))


@bp.route("/<chain_id>/links", methods=["POST"])
@role_required(*EDIT_ROLES)
def add_link(chain_id: str):
    values = _form_values(LINK_FORM_FIELDS)
    parent = request.form.get("parent") or None
    key_hint = request.form.get("key", "")

    def edit(draft: ChainDraft) -> str:
        link = draft.add_link(parent=parent, key=key_hint, **values)
        where = f"（上级：{draft.link(parent)['name']}）" if parent else f"（{link['stage']}）"
        return f"新增环节 {link['name']}{where}"

    return apply_edit(chain_id, "link_add", edit)


@bp.route("/<chain_id>/links/<link_key>", methods=["POST"])
@role_required(*EDIT_ROLES)
def update_link(chain_id: str, link_key: str):
    values = _form_values(LINK_FORM_FIELDS)

    def edit(draft: ChainDraft) -> str:
        old = draft.link(link_key)["name"]
        link = draft.update_link(link_key, **values)
        return f"修改环节 {old}" + (f"，更名为 {link['name']}" if link["name"] != old else "")

    return apply_edit(chain_id, "link_update", edit, link_key)


@bp.route("/<chain_id>/move", methods=["POST"])
@role_required(*EDIT_ROLES)
def move_link(chain_id: str):
    link_key = request.form.get("link", "")
    parent = request.form.get("parent") or None
    stage = request.form.get("stage", "")

    def edit(draft: ChainDraft) -> str:
        link = draft.move_link(link_key, parent, stage)
        where = f"{draft.link(parent)['name']} 之下" if parent else f"{link['stage']}顶层"
        return f"移动环节 {link['name']} 到 {where}"

    return apply_edit(chain_id, "link_move", edit, link_key)


@bp.route("/<chain_id>/links/<link_key>/delete", methods=["POST"])
@role_required(*EDIT_ROLES)
def delete_link(chain_id: str, link_key: str):
    def edit(draft: ChainDraft) -> str:
        name = draft.link(link_key)["name"]
        gone = draft.delete_link(link_key)
        return f"删除环节 {name}" + (f"（含 {len(gone) - 1} 个子环节）" if len(gone) > 1 else "")

    return apply_edit(chain_id, "link_delete", edit)


@bp.route("/<chain_id>/edges", methods=["POST"])
@role_required(*EDIT_ROLES)
def add_edge(chain_id: str):
    source, target = request.form.get("from", ""), request.form.get("to", "")

    def edit(draft: ChainDraft) -> str:
        draft.add_edge(source, target, request.form.get("note", ""))
        return f"新增供应关系 {draft.link(source)['name']} → {draft.link(target)['name']}"

    return apply_edit(chain_id, "edge_add", edit)


@bp.route("/<chain_id>/edges/delete", methods=["POST"])
@role_required(*EDIT_ROLES)
def remove_edge(chain_id: str):
    source, target = request.form.get("from", ""), request.form.get("to", "")

    def edit(draft: ChainDraft) -> str:
        draft.remove_edge(source, target)
        return f"删除供应关系 {source} → {target}"

    return apply_edit(chain_id, "edge_remove", edit)


@bp.route("/<chain_id>/fields", methods=["POST"])
@role_required(*EDIT_ROLES)
def update_fields(chain_id: str):
    values = {n: request.form.get(n, "") for n in ("name", "sector", "description", "source") if n in request.form}

    def edit(draft: ChainDraft) -> str:
        draft.update_fields(**values)
        return "修改产业链信息"

    return apply_edit(chain_id, "fields", edit)
