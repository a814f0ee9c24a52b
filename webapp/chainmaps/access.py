"""Who may see and edit a chain map (the role rule of docs/security.md, "Chain maps").

A chain map can be shared by several clusters. Administrators edit every map. A cluster manager (集聚区管理者)
edits a map used by at least one of their clusters, including a map shared with other clusters: every save is a
new version with author and reason, audited, and an administrator can restore any earlier version. 招商人员 read
the maps and versions of their clusters. Restoring an earlier version is for administrators only.
"""

from __future__ import annotations

from flask import abort
from flask_login import current_user
from sqlalchemy import select

from chains.chain_models import Chain
from chains.cluster_models import Cluster, ClusterChain
from webapp.auth.models import ROLE_ADMIN, ROLE_MANAGER, STAFF_ROLES
from webapp.extensions import db

EDIT_ROLES = (ROLE_ADMIN, ROLE_MANAGER)


def clusters_using(chain_id: str) -> list[Cluster]:
    """The clusters whose maps include `chain_id`."""
    return list(
        db.session.scalars(
            select(Cluster)
            .join(ClusterChain, ClusterChain.cluster_id == Cluster.id)
            .where(ClusterChain.chain_id == chain_id)
            .order_by(Cluster.name)
        )
    )


def _shares_a_cluster(chain_id: str) -> bool:
    return any(current_user.can_access_cluster(c.id) for c in clusters_using(chain_id))


def can_view_chain(chain_id: str) -> bool:
    """Admins see every chain; staff and managers the chains of their clusters."""
    if current_user.role == ROLE_ADMIN:
        return True
    return current_user.role in STAFF_ROLES and _shares_a_cluster(chain_id)


def can_edit_chain(chain_id: str) -> bool:
    """Admins edit every chain; managers the chains used by one of their clusters."""
    if current_user.role == ROLE_ADMIN:
        return True
    return current_user.role == ROLE_MANAGER and _shares_a_cluster(chain_id)


def visible_chains() -> list[Chain]:
    """Chains the current user may see, by name."""
    chains = db.session.scalars(select(Chain).order_by(Chain.name))
    if current_user.role == ROLE_ADMIN:
        return list(chains)
    mine = {cc.chain_id for c in current_user.clusters for cc in c.chains}
    return [c for c in chains if c.id in mine]


def chain_for(chain_id: str, edit: bool = False) -> Chain:
    """The chain, 403 when the user may not see (or edit) it, 404 when it does not exist."""
    chain = db.session.get(Chain, chain_id)
    if chain is None or chain.current_version is None:
        abort(404)
    if not (can_edit_chain(chain_id) if edit else can_view_chain(chain_id)):
        abort(403)
    return chain
