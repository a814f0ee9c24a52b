"""Server time of the main matching pages on the bundled demo data (prints medians; not a test).

Usage:
    .venv/bin/python bench/bench_pages.py [--instance /tmp/chainmatch-bench] [--repeat 5]

Runs the `chainmatch init` steps into the instance folder when it holds no database yet, logs in through the Flask
test client (a staff user for the cluster pages, a firm user for /suppliers/) and prints the median of
`--repeat` requests per page, after one warm-up request each (the first request loads the index).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

PASSWORD = "bench-password-not-secret"
CLUSTER = "qingdao-xihaian-marine-equipment"


def _token(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    if not match:
        raise SystemExit("no CSRF token on the page")
    return match.group(1)


def _login(client, username: str) -> None:
    token = _token(client.get("/auth/login").get_data(as_text=True))
    response = client.post("/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    if response.status_code != 302:
        raise SystemExit(f"login failed for {username}: {response.status_code}")


def _user(app, role: str, clusters=(), enterprise_id=None) -> str:
    from chains.cluster_models import Cluster
    from webapp.auth.models import User
    from webapp.extensions import db

    name = f"bench-{role}-{uuid.uuid4().hex[:6]}"
    with app.app_context():
        user = User(username=name, role=role, display_name=name, enterprise_id=enterprise_id)
        user.set_password(PASSWORD)
        for cid in clusters:
            user.clusters.append(db.session.get(Cluster, cid))
        db.session.add(user)
        db.session.commit()
    return name


def _median_ms(client, url: str, repeat: int, headers=None) -> tuple[float, int]:
    status = client.get(url, headers=headers).status_code  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        status = client.get(url, headers=headers).status_code
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), status


def _init(app) -> None:
    """The steps of `chainmatch init` (bundled chains, clusters, demo firms, indexes) on a schema built from the
    models, so the benchmark does not depend on the migration being current."""
    import webapp.cli  # noqa: F401 - registers the init steps of every feature
    from webapp.cli.init import INIT_STEPS
    from webapp.extensions import db

    with app.app_context():
        db.create_all()
        for _, _label, fn in INIT_STEPS:
            fn(app, demo_accounts=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", default="/tmp/chainmatch-bench")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["CHAINMATCH_INSTANCE_PATH"] = args.instance
    os.environ.setdefault("CHAINMATCH_LOG_LEVEL", "WARNING")
    from sqlalchemy import select

    from chains.chainmap_io import current_links
    from chains.cluster_models import Cluster, RosterEntry
    from webapp import create_app
    from webapp.auth.models import ROLE_FIRM, ROLE_STAFF
    from webapp.extensions import db
    from webapp.services.match import sync

    app = create_app({"RATELIMIT_ENABLED": False})
    if not (Path(args.instance) / "chainmatch.sqlite3").exists():
        _init(app)
    with app.app_context():
        cluster = db.session.get(Cluster, CLUSTER)
        chain_id = cluster.chain_ids[0]
        links = current_links(db.session, chain_id)
        parents = {link.parent_key for link in links if link.parent_key}
        link_key = next(link.key for link in links if link.key not in parents)
        firm_id = (
            cluster.chain_leader_id
            or db.session.scalars(select(RosterEntry.enterprise_id).where(RosterEntry.cluster_id == CLUSTER)).first()
        )
        sync(db.session, app)  # load the saved index first: until then pages use the keyword fallback
    staff = app.test_client()
    _login(staff, _user(app, ROLE_STAFF, clusters=(CLUSTER,)))
    firm = app.test_client()
    _login(firm, _user(app, ROLE_FIRM, enterprise_id=firm_id))
    pages = [
        (staff, f"/candidates/{CLUSTER}/{link_key}", None),
        (staff, f"/clusters/{CLUSTER}/chains/{chain_id}", None),
        (staff, f"/clusters/{CLUSTER}/chains/{chain_id}/links/{link_key}", {"HX-Request": "true"}),
        (staff, f"/firms/{firm_id}", None),
        (firm, "/suppliers/", None),
    ]
    print(f"median of {args.repeat} requests (ms), instance {args.instance}")
    for client, url, headers in pages:
        ms, status = _median_ms(client, url, args.repeat, headers)
        label = url + (" (htmx fragment)" if headers else "")
        print(f"{ms:8.1f}  {status}  {label}")


if __name__ == "__main__":
    sys.exit(main())
