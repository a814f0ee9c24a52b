"""The chain-map page and the candidates fragment under concurrent load, against the real server on 127.0.0.1.

A throw-away instance folder (database, indexes) is set up with the CLI: `chainmatch init`, N synthetic firms
imported, the match index built, a staff account created; then `chainmatch run` serves it and a thread pool of
clients, each logged in with its own session cookie, requests the pages for a fixed time.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from webapp.perf.machine import Stopwatch, machine_facts, percentiles_ms, work_dir

CLUSTER_ID = "qingdao-jimo-nev"  # a bundled demo cluster (new-energy vehicles)
USERNAME = "bench-staff"
READY_TIMEOUT_S = 600
_CREATE_SCHEMA = "from webapp import create_app\nfrom webapp.extensions import db\napp = create_app()\n" \
                 "with app.app_context():\n    db.create_all()\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict, *args: str, log=lambda m: None) -> str:
    log("chainmatch " + " ".join(args))
    done = subprocess.run([sys.executable, "-m", "webapp.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"chainmatch {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def _leaf_link(chain_id: str) -> str:
    from chains.enterprises.synth import DEFAULT_CHAIN_DIR

    data = yaml.safe_load((Path(DEFAULT_CHAIN_DIR) / f"{chain_id}.yaml").read_text(encoding="utf-8"))
    link = data["links"][0]
    while link.get("children"):
        link = link["children"][0]
    return link["id"]


def _login(base: str, password: str):
    import requests

    session = requests.Session()
    page = session.get(f"{base}/auth/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    reply = session.post(f"{base}/auth/login", data={"username": USERNAME, "password": password, "csrf_token": token},
                         timeout=30, allow_redirects=False)
    if reply.status_code not in (302, 303):
        raise RuntimeError(f"login failed: HTTP {reply.status_code}")
    return session


def prepare(n: int, folder: Path, database_url: str = "", log=lambda m: None) -> tuple[dict, str]:
    """Set up the instance (idempotent per folder); returns (environment, staff password)."""
    env = {**os.environ, "CHAINMATCH_INSTANCE_PATH": str(folder / "instance"), "CHAINMATCH_LOG_LEVEL": "WARNING",
           "CHAINMATCH_LOGIN_RATE_LIMIT": "1000 per minute"}
    if database_url:
        env["CHAINMATCH_DATABASE_URL"] = database_url
    marker = folder / "prepared.txt"
    if marker.exists():
        return env, marker.read_text().strip()
    shutil.rmtree(folder / "instance", ignore_errors=True)
    # The schema straight from the models, stamped as migrated: the benchmark measures speed and must not depend on
    # the migration being regenerated for the current models; `init` then loads the bundled data.
    subprocess.run([sys.executable, "-c", _CREATE_SCHEMA], env=env, check=True, capture_output=True)
    _cli(env, "db", "stamp", "head", log=log)
    _cli(env, "init", log=log)
    if n:
        csv_path = folder / "synthetic.csv"
        _cli(env, "demo", "synth", "--n", str(n), "--seed", "7", "--out", str(csv_path), log=log)
        _cli(env, "firms", "import", str(csv_path), "--json", log=log)
        csv_path.unlink()
    _cli(env, "index", "build", log=log)
    password = secrets.token_urlsafe(12)
    _cli(env, "users", "create", USERNAME, "--role", "staff", "--cluster", CLUSTER_ID, "--password", password, log=log)
    marker.write_text(password)
    return env, password


def run(n: int, clients: int = 8, seconds: float = 30.0, folder: str | None = None, database_url: str = "",
        log=lambda m: None) -> dict:
    import requests

    base_dir = work_dir(folder, f"web-{n}")
    with Stopwatch() as setup:
        env, password = prepare(n, base_dir, database_url, log)
    cluster = yaml.safe_load((Path(__file__).resolve().parents[2] / "data" / "clusters" / f"{CLUSTER_ID}.yaml")
                             .read_text(encoding="utf-8"))
    chain_id = cluster["chains"][0]
    link = _leaf_link(chain_id)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "webapp.cli", "run", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    pages = {"chain_map": (f"{base}/clusters/{CLUSTER_ID}/chains/{chain_id}", {}),
             "candidates_fragment": (f"{base}/candidates/{CLUSTER_ID}/{link}", {"HX-Request": "true"})}
    try:
        deadline = time.time() + READY_TIMEOUT_S
        while True:
            try:
                requests.get(f"{base}/auth/login", timeout=5)
                break
            except requests.ConnectionError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("server did not start")
                time.sleep(0.5)
        sessions = [_login(base, password) for _ in range(clients)]
        # Warm-up: the first candidates request loads the saved index into the server process.
        with Stopwatch() as warm:
            for _ in range(60):
                r = sessions[0].get(pages["candidates_fragment"][0], headers=pages["candidates_fragment"][1], timeout=600)
                if r.status_code == 200 and "索引正在构建" not in r.text:
                    break
                time.sleep(2)
        for url, headers in pages.values():
            sessions[0].get(url, headers=headers, timeout=60)
        results = {}
        for label, (url, headers) in pages.items():
            times: list[float] = []
            errors = [0]
            lock = threading.Lock()
            stop_at = time.time() + seconds

            def worker(session) -> None:
                while time.time() < stop_at:
                    with Stopwatch() as sw:
                        reply = session.get(url, headers=headers, timeout=60)
                    with lock:
                        times.append(sw.seconds)
                        if reply.status_code != 200:
                            errors[0] += 1

            threads = [threading.Thread(target=worker, args=(s,)) for s in sessions]
            with Stopwatch() as wall:
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            results[label] = {**percentiles_ms(times), "requests_per_s": round(len(times) / wall.seconds, 1),
                              "errors": errors[0], "url": url.replace(base, "")}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    return {"bench": "web", "n": n, "clients": clients, "seconds_per_page": seconds,
            "server": "chainmatch run (Flask development server, threaded, one process)",
            "database": "postgresql" if database_url.startswith("postgresql") else "sqlite",
            "setup_seconds": round(setup.seconds, 1), "warm_up_seconds": round(warm.seconds, 1),
            "pages": results, "machine": machine_facts()}
