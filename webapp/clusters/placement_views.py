"""企业归位 review: run the matcher's placement of roster firms, confirm or correct suggestions in bulk."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from chains.chainmap_io import current_links
from chains.cluster_models import ASSIGNMENT_MANUAL, LinkAssignment, RosterEntry
from webapp.auth.models import STAFF_ROLES
from webapp.auth.roles import role_required
from webapp.clusters import bp
from webapp.clusters.placement_runs import cancel_run, current_job, start_run, wait_for_runs  # noqa: F401
from webapp.clusters.views import chain_names_of
from webapp.extensions import db
from webapp.services import jobs
from webapp.services.tasks import control, wait_until_finished
from webapp.web.common import get_cluster, wants_fragment
from webapp.web.integrations import audit, optional_function

logger = logging.getLogger("chainmatch.clusters")

SYNC_WAIT_SECONDS = 3.0  # a placement run finishing within this is shown at once; longer runs are polled
POLL_SECONDS = 2
REJECT = "__reject__"


def _id(value: str) -> int | None:
    return int(value) if value.isdigit() and int(value) < 2**31 else None


def _unplaced(cluster_id: str) -> list[RosterEntry]:
    placed = select(LinkAssignment.enterprise_id).where(LinkAssignment.cluster_id == cluster_id)
    return list(
        db.session.scalars(
            select(RosterEntry).where(RosterEntry.cluster_id == cluster_id, RosterEntry.enterprise_id.not_in(placed))
        )
    )


def _link_choices(cluster) -> list[tuple[str, str, list]]:
    """(chain id, chain name, links) of every chain of the cluster, for the correction select."""
    names = chain_names_of(cluster)
    return [(cid, names.get(cid, cid), current_links(db.session, cid)) for cid in cluster.chain_ids]


def _context(cluster) -> dict:
    suggestions = db.session.scalars(
        select(LinkAssignment)
        .where(LinkAssignment.cluster_id == cluster.id, LinkAssignment.confirmed.is_(False))
        .order_by(LinkAssignment.enterprise_id, LinkAssignment.confidence.desc())
    ).all()
    choices = _link_choices(cluster)
    link_names = {link.key: f"{cname} / {link.name}" for _, cname, links in choices for link in links}
    job = current_job(cluster.id)
    return {
        "cluster": cluster,
        "suggestions": suggestions,
        "unplaced": _unplaced(cluster.id),
        "choices": choices,
        "link_names": link_names,
        "job": job,
        "matcher_ready": optional_function("webapp.services.match", "place_roster") is not None,
        "chain_names": chain_names_of(cluster),
        "reject": REJECT,
        "poll_seconds": POLL_SECONDS,
        "stopping": control.stopping(current_app, job),
    }


@bp.route("/<cluster_id>/placement")
@role_required(*STAFF_ROLES)
def placement(cluster_id: str):
    cluster = get_cluster(cluster_id)
    return render_template("clusters/placement.html", **_context(cluster))


@bp.route("/<cluster_id>/placement/status")
@role_required(*STAFF_ROLES)
def placement_status(cluster_id: str):
    cluster = get_cluster(cluster_id)
    context = _context(cluster)
    if wants_fragment():
        return render_template("clusters/_placement_body.html", **context)
    return render_template("clusters/placement.html", **context)


@bp.route("/<cluster_id>/placement/run", methods=["POST"])
@role_required(*STAFF_ROLES)
def placement_run(cluster_id: str):
    cluster = get_cluster(cluster_id)
    if optional_function("webapp.services.match", "place_roster") is None:
        return _done(cluster, "匹配服务尚未就绪，暂时无法自动归位。", "error", 503)
    job = start_run(cluster_id, current_user.id)
    if job is None:
        return _done(cluster, "自动归位正在进行中，请稍候。", "warning", 409)
    audit("assignment.place_run", "cluster", cluster_id, cluster_id=cluster_id)
    db.session.commit()
    logger.info("user %s queued placement for %s", current_user.id, cluster_id)
    wait_until_finished(
        lambda: jobs.get(db.session, jobs.KIND_PLACEMENT, cluster_id).status, SYNC_WAIT_SECONDS, jobs.ACTIVE
    )
    job = jobs.get(db.session, jobs.KIND_PLACEMENT, cluster_id)
    if job.status in jobs.ACTIVE:
        return _done(cluster, "自动归位已在后台运行，完成后本页将自动刷新。", "success", 202)
    if job.status == jobs.STATUS_CANCELLED:  # cancelled from another page meanwhile
        return _done(cluster, job.message, "warning", 200)
    done = job.status == jobs.STATUS_DONE
    return _done(cluster, job.message, "success" if done else "error", 200 if done else 500)


@bp.route("/<cluster_id>/placement/cancel", methods=["POST"])
@role_required(*STAFF_ROLES)
def placement_cancel(cluster_id: str):
    cluster = get_cluster(cluster_id)
    # The cancel flag before the audit entry, as for imports: the entry's write must not wait for a running job.
    outcome = cancel_run(cluster_id)
    if not outcome:
        db.session.rollback()
        return _done(cluster, "当前没有正在进行的自动归位。", "warning", 200)
    audit("assignment.place_cancel", "cluster", cluster_id, cluster_id=cluster_id)  # committed with the cancel
    db.session.commit()
    logger.info("user %s cancelled placement for %s", current_user.id, cluster_id)
    if outcome == control.CANCELLED:
        return _done(cluster, "自动归位已取消。", "success", 200)
    return _done(cluster, "正在取消自动归位，当前步骤结束后停止，不会生成新的归位建议。", "success", 202)


def _refresh_lists(cluster) -> None:
    """Lists derive from confirmed assignments: re-derive the ones already materialised (curation is kept)."""
    from chains.lists import refresh_lists
    from webapp.clusters.lists_views import _has_derived_entries

    for chain_id in cluster.chain_ids:
        if _has_derived_entries(cluster.id, chain_id):
            refresh_lists(db.session, cluster.id, chain_id)


def _done(cluster, message: str, category: str, status: int):
    if wants_fragment():
        context = _context(cluster)
        return render_template("clusters/_placement_body.html", message=message, category=category, **context), status
    flash(message, category)
    return redirect(url_for("clusters.placement", cluster_id=cluster.id))


@bp.route("/<cluster_id>/placement/confirm", methods=["POST"])
@role_required(*STAFF_ROLES)
def placement_confirm(cluster_id: str):
    """Confirm the checked suggestions; a row whose select names another link is corrected to it."""
    cluster = get_cluster(cluster_id)
    valid = {link.key: cid for cid, _, links in _link_choices(cluster) for link in links}
    checked = {i for i in map(_id, request.form.getlist("confirm")) if i is not None}
    corrections = {i for k, v in request.form.items() if k.startswith("link_") and v and (i := _id(k[5:])) is not None}
    done = corrected = rejected = 0
    errors: list[str] = []
    to_confirm: list[int] = []  # unchanged suggestions, confirmed through the matcher service
    for assignment_id in sorted(checked | corrections):
        a = db.session.get(LinkAssignment, assignment_id)
        if a is None or a.cluster_id != cluster_id or a.confirmed:
            continue
        choice = request.form.get(f"link_{assignment_id}", "")
        if choice == REJECT:
            audit("assignment.reject", "enterprise", a.enterprise_id, cluster_id=cluster_id, link_key=a.link_key)
            db.session.delete(a)
            rejected += 1
            continue
        if choice and choice != a.link_key:
            if choice not in valid:
                errors.append(f"{a.enterprise.name}：所选环节不属于本集聚区的产业链")
                continue
            existing = db.session.scalar(
                select(LinkAssignment).where(
                    LinkAssignment.cluster_id == cluster_id,
                    LinkAssignment.enterprise_id == a.enterprise_id,
                    LinkAssignment.link_key == choice,
                )
            )
            audit(
                "assignment.correct", "enterprise", a.enterprise_id, cluster_id=cluster_id, old=a.link_key, new=choice
            )
            if existing is not None:
                db.session.delete(a)
                a = existing
            else:
                a.link_key, a.chain_id = choice, valid[choice]
            a.source = ASSIGNMENT_MANUAL
            corrected += 1
        elif assignment_id not in checked:
            continue
        else:
            audit(
                "assignment.confirm",
                "enterprise",
                a.enterprise_id,
                cluster_id=cluster_id,
                link_key=a.link_key,
                confidence=a.confidence,
            )
            to_confirm.append(a.id)
            continue
        a.confirmed = True
        a.created_by_id = current_user.id
        a.created_at = datetime.now(timezone.utc)
        done += 1
    if to_confirm:
        confirm = optional_function("webapp.services.match", "confirm_assignments")
        if confirm is not None:
            done += confirm(db.session, to_confirm, current_user)
        else:
            for a in db.session.scalars(select(LinkAssignment).where(LinkAssignment.id.in_(to_confirm))):
                a.confirmed, a.created_by_id = True, current_user.id
                done += 1
    db.session.commit()
    if done or rejected:
        _refresh_lists(cluster)
    logger.info(
        "user %s confirmed %d, corrected %d, rejected %d assignments in %s",
        current_user.id,
        done,
        corrected,
        rejected,
        cluster_id,
    )
    message = f"已确认 {done} 条归位（其中修正 {corrected} 条），驳回 {rejected} 条。"
    if errors:
        message += " " + "；".join(errors)
    return _done(cluster, message, "error" if errors else "success", 400 if errors and not done else 200)
