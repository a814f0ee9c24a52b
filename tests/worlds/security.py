"""A realistic seeded world for the security tests (no tests here): two clusters on one chain, firms, roster, a lead
in each cluster, list entries, matchmaking requests of two chain-leader firms, an import job, users of every role
with API tokens, and one logged-in test client per role.

Names and notes of the firm under test carry script payloads (synthetic data) so every page can be checked for
escaping. Built once per module and backend (`world` fixture in the test modules) to keep the suites fast.
"""

from __future__ import annotations

import csv
import os
import uuid
from dataclasses import dataclass, field

from sqlalchemy import create_engine, text

from tests.conftest import BACKENDS, PG_URL, _pg_schema_url, csrf_token_from, make_app
from tests.worlds.clusters import CHAIN, CLUSTER_A, CLUSTER_B, XSS_NAME, XSS_NOTE, build_world
from webapp.extensions import db

PASSWORD = "correct-horse-battery"
ROLES = ("admin", "staff", "manager", "firm")
XSS_PAYLOADS = (XSS_NAME, XSS_NOTE)
LINK = "tc-parts"
LOGIN_RATE_LIMIT = "1000 per minute"  # the world logs in many clients from one address; limits have their own test


@dataclass
class World:
    app: object
    ids: dict = field(default_factory=dict)
    clients: dict = field(default_factory=dict)  # role → logged-in test client ("anonymous" → not logged in)
    tokens: dict = field(default_factory=dict)  # role → API token plaintext ("firm_b" too)
    backend: str = ""

    def csrf(self, role: str) -> str:
        return csrf_token_from(self.clients[role].get("/").get_data(as_text=True))

    def post(self, role: str, path: str, data: dict | None = None, **kwargs):
        """A browser-like form POST with a valid CSRF token of this role's session."""
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf(role))
        return self.clients[role].post(path, data=data, **kwargs)

    def api(self, role: str, method: str, path: str, **kwargs):
        headers = kwargs.pop("headers", {})
        if role in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return self.clients["anonymous"].open(path, method=method, headers=headers, **kwargs)


def _seed(app) -> dict:
    from chains.cluster_models import Cluster
    from chains.enterprise_models import Enterprise, ImportJob
    from chains.list_models import ListEntry
    from chains.lists import refresh_lists
    from webapp.auth.models import User
    from webapp.auth.tokens import create_token
    from webapp.leads.models import Lead
    from webapp.suppliers.models import MatchmakingRequest

    with app.app_context():
        s = db.session
        ids = build_world(s)
        xss_firm = s.get(Enterprise, ids["candidate"])
        xss_firm.main_products = f"{XSS_NOTE} 核心部件"
        xss_firm.data_note = XSS_NOTE
        # Chain leaders: cluster A's is a local firm, cluster B's is 乙区企业.
        leader_a, leader_b = ids["local"][0], ids["other"]
        s.get(Cluster, CLUSTER_A).chain_leader_id = leader_a
        s.get(Cluster, CLUSTER_B).chain_leader_id = leader_b
        s.get(Cluster, CLUSTER_A).description = XSS_NOTE
        lead_a = Lead(
            cluster_id=CLUSTER_A,
            chain_id=CHAIN,
            link_key=LINK,
            enterprise_id=ids["candidate"],
            notes=XSS_NOTE,
            next_step=XSS_NAME,
        )
        lead_b = Lead(
            cluster_id=CLUSTER_B, chain_id=CHAIN, link_key="tc-service", enterprise_id=ids["unplaced"], notes="乙区线索"
        )
        lead_spare = Lead(
            cluster_id=CLUSTER_A, chain_id=CHAIN, link_key=LINK, enterprise_id=ids["local"][2], notes="用于删除测试"
        )
        s.add_all([lead_a, lead_b, lead_spare])
        s.commit()
        refresh_lists(s, CLUSTER_A, CHAIN)
        refresh_lists(s, CLUSTER_B, CHAIN)
        entry_a = s.scalars(
            db.select(ListEntry).where(ListEntry.cluster_id == CLUSTER_A).order_by(ListEntry.id)
        ).first()
        entry_b = s.scalars(
            db.select(ListEntry).where(ListEntry.cluster_id == CLUSTER_B).order_by(ListEntry.id)
        ).first()
        entry_a.note = XSS_NOTE
        req_a = MatchmakingRequest(
            requester_id=leader_a,
            supplier_id=ids["candidate"],
            cluster_id=CLUSTER_A,
            chain_id=CHAIN,
            link_key=LINK,
            need_text=XSS_NOTE,
            note=XSS_NAME,
        )
        req_b = MatchmakingRequest(
            requester_id=leader_b,
            supplier_id=ids["local"][1],
            cluster_id=CLUSTER_B,
            chain_id=CHAIN,
            link_key="tc-service",
            need_text="乙区需求",
        )
        s.add_all([req_a, req_b])
        upload_dir = app.config["UPLOAD_DIR"]
        os.makedirs(upload_dir, exist_ok=True)
        report_path = os.path.join(upload_dir, f"report-{uuid.uuid4().hex}.csv")
        with open(report_path, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["行号", "企业名称", "统一社会信用代码", "结果", "原因"])
            writer.writerow(["2", XSS_NAME, "", "rejected", XSS_NOTE])
        job = ImportJob(
            filename=f"{XSS_NAME}.csv",
            status="done",
            total_rows=1,
            processed_rows=1,
            counts={"rejected": 1},
            report_path=report_path,
            error="",
        )
        s.add(job)
        users = {}
        shared_hash = None  # one argon2 hash (same password) for every world user keeps the setup fast
        for role, clusters, enterprise in (
            ("admin", (), None),
            ("staff", (CLUSTER_A,), None),
            ("manager", (CLUSTER_A,), None),
            ("firm", (CLUSTER_A,), leader_a),
            ("firm_b", (CLUSTER_B,), leader_b),
            ("victim", (CLUSTER_A,), None),
        ):
            user = User(
                username=f"{role}-user",
                role="staff" if role == "victim" else role.split("_")[0],
                display_name=XSS_NAME if role == "victim" else role,
                enterprise_id=enterprise,
            )
            if shared_hash is None:
                user.set_password(PASSWORD)
                shared_hash = user.password_hash
            user.password_hash = shared_hash
            user.clusters = [s.get(Cluster, c) for c in clusters]
            s.add(user)
            users[role] = user
        s.commit()
        tokens, token_ids = {}, {}
        for role, user in users.items():
            row, plaintext = create_token(s, user.id, "matrix")
            tokens[role], token_ids[role] = plaintext, row.id
        s.commit()
        ids.update(
            lead_a=lead_a.id,
            lead_b=lead_b.id,
            lead_spare=lead_spare.id,
            entry_a=entry_a.id,
            entry_b=entry_b.id,
            list_type_a=entry_a.list_type,
            list_type_b=entry_b.list_type,
            request_a=req_a.id,
            request_b=req_b.id,
            job=job.id,
            leader_a=leader_a,
            leader_b=leader_b,
            users={role: u.id for role, u in users.items()},
            token_ids=token_ids,
        )
        return {"ids": ids, "tokens": tokens}


def add_user(app, role: str, clusters: tuple[str, ...] = (CLUSTER_A,)) -> str:
    """One more user of `role` (firm accounts act for cluster A's chain leader); returns the username."""
    from chains.cluster_models import Cluster
    from webapp.auth.models import User

    with app.app_context():
        username = f"{role}-{uuid.uuid4().hex[:8]}"
        leader = db.session.get(Cluster, CLUSTER_A).chain_leader_id if role == "firm" else None
        user = User(username=username, role=role, display_name=username, enterprise_id=leader)
        template = db.session.scalars(db.select(User).where(User.username == "admin-user")).one()
        user.password_hash = template.password_hash  # same password as the world's users, without hashing again
        user.clusters = [db.session.get(Cluster, c) for c in clusters] if role != "admin" else []
        db.session.add(user)
        db.session.commit()
        return username


def login(app, username: str):
    client = app.test_client()
    token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
    response = client.post("/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def build(backend: str, tmp_path) -> tuple[World, callable]:
    """A world on `backend`; returns it and a cleanup function."""
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'security.sqlite3'}"
    else:
        schema = f"s_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = _pg_schema_url(schema)
    app = make_app(url, tmp_path, LOGIN_RATE_LIMIT=LOGIN_RATE_LIMIT)
    seeded = _seed(app)
    world = World(app=app, ids=seeded["ids"], tokens=seeded["tokens"], backend=backend)
    world.clients["anonymous"] = app.test_client()
    for role in ROLES + ("firm_b",):
        world.clients[role] = login(app, f"{role}-user")

    def cleanup() -> None:
        from webapp.clusters import placement_views
        from webapp.services.match import wait_for_background

        # Background work started by the probes (placement runs, index builds) ends before the database goes away,
        # so it cannot leak into later tests that use the same cluster ids.
        placement_views.wait_for_runs()
        wait_for_background(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if schema:
            admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    return world, cleanup


__all__ = ["BACKENDS", "World", "build", "ROLES", "XSS_PAYLOADS", "CLUSTER_A", "CLUSTER_B", "CHAIN", "LINK"]
