"""Soak: concurrent clients mixing reads, candidate searches, lead updates and imports against `chainmatch serve`.

Usage (loopback only; stops by itself):
    PYTHONPATH=. .venv/bin/python bench/soak.py [--clients 16] [--seconds 600] [--quiet-seconds 60]
        [--folder /tmp/chainmatch-soak] [--database-url URL] [--workers 2] [--threads 4] [--import-every 30]
        [--json OUT.json]

Sets up a throw-away instance like `bench.perf.web_bench` (bundled demo data, built-in embedder), starts the real
server, logs every client in (its own session, API token and lead), then runs two phases with the same clients
and request mix: a quiet run (no import) and the soak (an import of a fresh synthetic file every --import-every
seconds, default 30). Each client
cycles: chain-map page, candidate search, lead update (API PATCH with a unique note), lead list (API). At the end
it counts 5xx answers, compares the lead updates answered 200 with the note changes stored (LeadEvent rows) and
the firms of finished imports with the firms stored, and prints p50/p95 of both phases as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.perf import web_bench  # noqa: E402 - after the sys.path line above
from bench.perf.machine import percentiles_ms  # noqa: E402

IMPORT_ROWS = 2000  # firms per import file
IMPORT_EVERY_S = 30.0  # a new import starts this long after the previous one started (or when it ends, if later)
REQUEST_TIMEOUT_S = 120
IMPORT_POLL_S = 0.5
P95_TOLERANCE = 2.0  # the soak's p95 may be at most this multiple of the quiet run's


def _csrf(session: requests.Session, base: str, path: str) -> str:
    html = session.get(f"{base}{path}", timeout=REQUEST_TIMEOUT_S).text
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _new_token(session: requests.Session, base: str) -> str:
    token = _csrf(session, base, "/api/tokens/")
    html = session.post(
        f"{base}/api/tokens/", data={"csrf_token": token, "name": "soak"}, timeout=REQUEST_TIMEOUT_S
    ).text
    return re.search(r'data-testid="new-token">([^<]+)<', html).group(1)


class Client:
    """One logged-in user session with its API token and its own lead."""

    def __init__(self, base: str, password: str, index: int) -> None:
        self.base, self.index = base, index
        self.session = web_bench._login(base, password)
        self.api = {"Authorization": f"Bearer {_new_token(self.session, base)}"}
        self.lead_id = 0
        self.sent_updates = 0

    def create_lead(self, cluster_id: str, enterprise_id: int) -> None:
        reply = requests.post(
            f"{self.base}/api/v1/leads",
            json={"cluster_id": cluster_id, "enterprise_id": enterprise_id},
            headers=self.api,
            timeout=REQUEST_TIMEOUT_S,
        )
        reply.raise_for_status()
        self.lead_id = reply.json()["id"]

    def cycle(self, step: int, cluster_id: str, chain_id: str, link: str, record) -> None:
        """One request of the mix, timed and recorded."""
        kind = step % 4
        started = time.perf_counter()
        if kind == 0:
            reply = self.session.get(f"{self.base}/clusters/{cluster_id}/chains/{chain_id}", timeout=REQUEST_TIMEOUT_S)
        elif kind == 1:
            reply = self.session.get(f"{self.base}/candidates/{cluster_id}/{link}", timeout=REQUEST_TIMEOUT_S)
        elif kind == 2:
            reply = requests.patch(
                f"{self.base}/api/v1/leads/{self.lead_id}",
                headers=self.api,
                timeout=REQUEST_TIMEOUT_S,
                json={"notes": f"soak {self.index} {step} {time.time_ns()}"},
            )
            if reply.status_code == 200:
                self.sent_updates += 1
        else:
            reply = requests.get(
                f"{self.base}/api/v1/leads", params={"cluster": cluster_id}, headers=self.api, timeout=REQUEST_TIMEOUT_S
            )
        record(
            ("page", "candidates", "lead_update", "lead_list")[kind], reply.status_code, time.perf_counter() - started
        )


def _phase(clients: list[Client], seconds: float, cluster_id: str, chain_id: str, link: str) -> dict:
    """Every client cycles through the mix until the deadline; returns statuses and latencies."""
    lock = threading.Lock()
    statuses: Counter = Counter()
    latencies: list[float] = []

    def record(kind: str, status: int, seconds_taken: float) -> None:
        with lock:
            statuses[f"{kind}:{status}"] += 1
            latencies.append(seconds_taken)

    deadline = time.monotonic() + seconds

    def loop(client: Client) -> None:
        step = client.index
        while time.monotonic() < deadline:
            try:
                client.cycle(step, cluster_id, chain_id, link, record)
            except requests.RequestException as exc:
                record(f"error:{type(exc).__name__}", 0, 0.0)
            step += 1

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server_errors = sum(
        n for key, n in statuses.items() if key.rsplit(":", 1)[1].startswith("5") or key.startswith("error:")
    )
    return {
        "requests": len(latencies),
        "server_errors": server_errors,
        "statuses": dict(sorted(statuses.items())),
        **percentiles_ms(latencies),
    }


def _importer(base: str, password: str, every: float, stop: threading.Event, results: list, tag: str) -> None:
    """Upload a fresh synthetic file every `every` seconds until stopped; record each job's outcome."""
    session = web_bench._login(base, password)
    round_ = 0
    while not stop.is_set():
        started = time.monotonic()
        rows = [
            f"{tag}-{round_}-{i},合成压测企业{tag}-{round_}-{i:05d}有限公司,,青岛市,测试,合成数据：压测\n"
            for i in range(IMPORT_ROWS)
        ]
        content = ("外部编号,企业名称,统一社会信用代码,城市,经营范围,数据说明\n" + "".join(rows)).encode("utf-8")
        token = _csrf(session, base, "/imports/")
        reply = session.post(
            f"{base}/imports/",
            data={"csrf_token": token},
            files={"file": (f"soak-{round_}.csv", content, "text/csv")},
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT_S,
        )
        job = int(reply.headers["Location"].rsplit("/", 1)[1])
        while True:
            html = session.get(
                f"{base}/imports/{job}/status", headers={"HX-Request": "true"}, timeout=REQUEST_TIMEOUT_S
            ).text
            if 'hx-trigger="every 1s"' not in html:
                break
            time.sleep(IMPORT_POLL_S)
        results.append(
            {"job": job, "rows": IMPORT_ROWS, "done": "已完成" in html, "seconds": round(time.monotonic() - started, 2)}
        )
        round_ += 1
        stop.wait(max(0.0, every - (time.monotonic() - started)))


def _stored(env: dict, clients: list[Client], tag: str) -> tuple[dict[int, int], int]:
    """Note changes stored per lead, and firms stored by this run's imports (read straight from the database)."""
    os.environ.update(env)
    from sqlalchemy import func, select

    from chains.enterprise_models import Enterprise
    from webapp import create_app
    from webapp.extensions import db
    from webapp.leads.models import LeadEvent

    app = create_app()
    with app.app_context():
        notes = dict(
            db.session.execute(
                select(LeadEvent.lead_id, func.count()).where(LeadEvent.field == "notes").group_by(LeadEvent.lead_id)
            ).all()
        )
        firms = db.session.scalar(
            select(func.count()).select_from(Enterprise).where(Enterprise.external_id.like(f"{tag}-%"))
        )
    return {c.lead_id: notes.get(c.lead_id, 0) for c in clients}, firms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--quiet-seconds", type=float, default=60.0)
    parser.add_argument("--folder", default="/tmp/chainmatch-soak")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--import-every", type=float, default=IMPORT_EVERY_S)
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    os.environ["CHAINMATCH_EMBEDDING_MODEL"] = "builtin"
    os.environ["CHAINMATCH_API_RATE_LIMIT"] = "100000 per minute"
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    env, password = web_bench.prepare(0, folder, args.database_url, log=print)
    cluster = yaml.safe_load((ROOT / "data" / "clusters" / f"{web_bench.CLUSTER_ID}.yaml").read_text(encoding="utf-8"))
    chain_id = cluster["chains"][0]
    link = web_bench._leaf_link(chain_id)
    port = web_bench._free_port()
    base = f"http://127.0.0.1:{port}"
    server = web_bench._start_server("serve", env, port, args.workers, args.threads, folder / "server.log")
    try:
        web_bench._wait_for_workers(
            server, folder / "server.log", args.workers, time.time() + web_bench.READY_TIMEOUT_S
        )
        clients = [Client(base, password, i) for i in range(args.clients)]
        firms = requests.get(
            f"{base}/api/v1/enterprises",
            params={"limit": args.clients},
            headers=clients[0].api,
            timeout=REQUEST_TIMEOUT_S,
        ).json()["items"]
        for client, firm in zip(clients, firms, strict=False):
            client.create_lead(web_bench.CLUSTER_ID, firm["id"])
        tag = f"soak{time.time_ns():x}"  # this run's import rows
        notes_before, _ = _stored(env, clients, tag)
        for client in clients:  # warm-up: every page once (the first candidate search loads the index)
            client.cycle(1, web_bench.CLUSTER_ID, chain_id, link, lambda *a: None)
        print(f"quiet run: {args.clients} clients, {args.quiet_seconds:.0f} s", flush=True)
        quiet = _phase(clients, args.quiet_seconds, web_bench.CLUSTER_ID, chain_id, link)
        print(
            f"soak: {args.clients} clients, an import every {args.import_every:.0f} s, {args.seconds:.0f} s", flush=True
        )
        stop, imports = threading.Event(), []
        importer = threading.Thread(target=_importer, args=(base, password, args.import_every, stop, imports, tag))
        importer.start()
        soak = _phase(clients, args.seconds, web_bench.CLUSTER_ID, chain_id, link)
        stop.set()
        importer.join()
    finally:
        server.terminate()
        server.wait(timeout=60)
    notes_after, stored_firms = _stored(env, clients, tag)
    stored_notes = {lead: notes_after[lead] - notes_before.get(lead, 0) for lead in notes_after}
    sent = {c.lead_id: c.sent_updates for c in clients}
    lost = sum(max(0, sent[lead] - stored_notes[lead]) for lead in sent)
    expected_firms = sum(job["rows"] for job in imports if job["done"])
    result = {
        "clients": args.clients,
        "seconds": args.seconds,
        "quiet_seconds": args.quiet_seconds,
        "workers": args.workers,
        "threads": args.threads,
        "import_every": args.import_every,
        "database": "postgresql" if args.database_url else "sqlite",
        "quiet": quiet,
        "soak": soak,
        "lead_updates_sent": sum(sent.values()),
        "lead_updates_stored": sum(stored_notes.values()),
        "lost_lead_updates": lost,
        "imports": len(imports),
        "import_seconds": [j["seconds"] for j in imports],
        "imports_failed": sum(not j["done"] for j in imports),
        "import_firms_expected": expected_firms,
        "import_firms_stored": stored_firms,
        "p95_ratio": round(soak["p95_ms"] / quiet["p95_ms"], 2) if quiet["p95_ms"] else None,
    }
    result["ok"] = (
        quiet["server_errors"] == 0
        and soak["server_errors"] == 0
        and lost == 0
        and stored_firms == expected_firms
        and result["imports_failed"] == 0
        and result["p95_ratio"] is not None
        and result["p95_ratio"] <= P95_TOLERANCE
    )
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
