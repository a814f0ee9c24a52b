"""The chain-map page and the candidates fragment under concurrent load, against the real server on 127.0.0.1.

A throw-away instance folder (database, indexes) is set up with the CLI: the schema, `chainmatch init`, N synthetic
firms imported, the match index built, a staff account created. Then `chainmatch serve` (gunicorn, several worker
processes; or `chainmatch run`, Flask's development server, with --server run) serves it, and a load generator
requests each page for a fixed time with one keep-alive connection per client, each client logged in with its own
session cookie:

* `wrk` (Debian's package, C, event loop): one wrk thread and one connection per client, the client's cookie
  set per thread by a Lua script; the default when `wrk` is installed;
* `asyncio`: a minimal HTTP/1.1 keep-alive client on Python's asyncio, one coroutine per client, in one thread;
  the fallback, far cheaper than a thread per client with `requests`.

Both run on the same cores as the server: the JSON records the load generator's own CPU time beside the server's.
The load generators are in bench/perf/web_load.py.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.perf.machine import Stopwatch, machine_facts, work_dir
from bench.perf.web_load import USER_AGENT, _niceness, _run_asyncio, _run_wrk, choose_tool, wrk_version

CLUSTER_ID = "qingdao-jimo-nev"  # a bundled demo cluster (new-energy vehicles)
USERNAME = "bench-staff"
READY_TIMEOUT_S = 1800
WARM_UP_TIMEOUT_S = 1800
# Each page is first loaded with the load tool itself for this long, unmeasured: its new connections may land on a
# worker process the warm-up's connections never reached, whose first candidates page (about 1 s at 1M firms) would
# otherwise be timed.
WARM_UP_LOAD_SECONDS = 5
FALLBACK_MARK = "索引正在构建"
SERVERS = ("serve", "run")
_CREATE_SCHEMA = (
    "from webapp import create_app\nfrom webapp.extensions import db\napp = create_app()\n"
    "with app.app_context():\n    db.create_all()\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict, *args: str, log=lambda m: None) -> str:
    log("chainmatch " + " ".join(args))
    done = subprocess.run([sys.executable, "-m", "webapp.cli.main", *args], env=env, capture_output=True, text=True)
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
    session.headers["User-Agent"] = USER_AGENT
    page = session.get(f"{base}/auth/login", timeout=60).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    reply = session.post(
        f"{base}/auth/login",
        data={"username": USERNAME, "password": password, "csrf_token": token},
        timeout=60,
        allow_redirects=False,
    )
    if reply.status_code not in (302, 303):
        raise RuntimeError(f"login failed: HTTP {reply.status_code}")
    return session


def _cookie_header(session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def prepare(n: int, folder: Path, database_url: str = "", log=lambda m: None) -> tuple[dict, str]:
    """Set up the instance (idempotent per folder); returns (environment, staff password)."""
    env = {
        **os.environ,
        "CHAINMATCH_INSTANCE_PATH": str(folder / "instance"),
        "CHAINMATCH_LOG_LEVEL": "WARNING",
        "CHAINMATCH_LOGIN_RATE_LIMIT": "1000 per minute",
    }
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


# ----------------------------------------------------------------------------- server processes


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes (seconds)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


READY_LINE = re.compile(r"worker \d+: match index (\w+)")


def _start_server(
    kind: str, env: dict, port: int, workers: int, threads: int, log_path: Path, nice: int = 0
) -> subprocess.Popen:
    if kind == "run":
        args = ["run", "--host", "127.0.0.1", "--port", str(port)]
    else:
        args = [
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ]
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "webapp.cli.main", *args],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_niceness(nice),
        )


def _wait_for_workers(process: subprocess.Popen, log_path: Path, workers: int, deadline: float) -> list[str]:
    """Until every gunicorn worker has loaded the match index (each logs one line when it starts serving)."""
    while True:
        statuses = READY_LINE.findall(log_path.read_text(errors="replace"))
        if len(statuses) >= workers:
            return statuses
        if time.time() > deadline or process.poll() is not None:
            raise RuntimeError(f"server workers did not start (see {log_path})")
        time.sleep(0.5)


# ----------------------------------------------------------------------------- the benchmark


def _warm_up(pages: dict, sessions: list, clients: int, log) -> None:
    """Until every client's requests (spread over the worker processes) get the full ranking, not the fallback."""
    from concurrent.futures import ThreadPoolExecutor

    url, headers = pages["candidates_fragment"]
    deadline = time.time() + WARM_UP_TIMEOUT_S

    def fetch(session) -> bool:
        reply = session.get(url, headers=headers, timeout=600)
        return reply.status_code == 200 and FALLBACK_MARK not in reply.text

    with ThreadPoolExecutor(max_workers=clients) as pool:
        good_rounds = 0
        while good_rounds < 3:
            if time.time() > deadline:
                raise RuntimeError("the server did not get its match index ready")
            if all(pool.map(fetch, sessions)):
                good_rounds += 1
            else:
                good_rounds = 0
                log("waiting for the match index in every worker …")
                time.sleep(2)
        for page_url, page_headers in pages.values():
            list(pool.map(lambda s: s.get(page_url, headers=page_headers, timeout=600), sessions))


def run(
    n: int,
    clients: int = 8,
    seconds: float = 30.0,
    folder: str | None = None,
    database_url: str = "",
    log=lambda m: None,
    server: str = "serve",
    workers: int | None = None,
    threads: int | None = None,
    tool: str = "auto",
    nice: int = 0,
) -> dict:
    """`nice`: scheduling niceness of the server and of wrk (e.g. -10, as root, to measure the server on a machine
    shared with other busy processes closer to how it runs on its own); 0 leaves them as they are."""
    import requests

    from webapp.web.server import WORKER_CLASS, default_workers

    tool = choose_tool(tool)
    workers = default_workers(workers or 0)
    threads = threads or 4
    base_dir = work_dir(folder, f"web-{n}")
    with Stopwatch() as setup:
        env, password = prepare(n, base_dir, database_url, log)
    cluster = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "data" / "clusters" / f"{CLUSTER_ID}.yaml").read_text(encoding="utf-8")
    )
    chain_id = cluster["chains"][0]
    link = _leaf_link(chain_id)
    port = _free_port()
    log(f"starting chainmatch {server} on port {port}")
    log_path = base_dir / "server.log"
    with Stopwatch() as boot:
        process = _start_server(server, env, port, workers, threads, log_path, nice)
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + READY_TIMEOUT_S
        worker_status = _wait_for_workers(process, log_path, workers, deadline) if server == "serve" else []
        while True:
            try:
                requests.get(f"{base}/auth/login", timeout=READY_TIMEOUT_S)
                break
            except requests.ConnectionError:
                if time.time() > deadline or process.poll() is not None:
                    raise RuntimeError("server did not start")
                time.sleep(0.5)
    pages = {
        "chain_map": (f"{base}/clusters/{CLUSTER_ID}/chains/{chain_id}", {}),
        "candidates_fragment": (f"{base}/candidates/{CLUSTER_ID}/{link}", {"HX-Request": "true"}),
    }
    try:
        sessions = [_login(base, password) for _ in range(clients)]
        with Stopwatch() as warm:
            _warm_up(pages, sessions, clients, log)
        cookies = [_cookie_header(s) for s in sessions]
        with Stopwatch() as warm_load:
            for label, (url, headers) in pages.items():
                log(f"{label}: warming every worker with {tool} for {WARM_UP_LOAD_SECONDS} s (not measured)")
                (_run_wrk if tool == "wrk" else _run_asyncio)(url, cookies, headers, WARM_UP_LOAD_SECONDS, nice)
        server_pids = [process.pid] + _children(process.pid)
        results = {}
        for label, (url, headers) in pages.items():
            log(f"{label}: {clients} clients for {seconds:g} s with {tool}")
            cpu_before = _cpu_seconds(server_pids)
            figures = (_run_wrk if tool == "wrk" else _run_asyncio)(url, cookies, headers, seconds, nice)
            server_cpu = _cpu_seconds(server_pids) - cpu_before
            figures["server_cpu_ms_per_request"] = round(server_cpu * 1000 / max(1, figures["samples"]), 1)
            results[label] = {**figures, "url": url.replace(base, "")}
        server_rss = _rss_mb(server_pids)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    if server == "run":
        server_facts = {"kind": "flask-dev", "command": "chainmatch run", "workers": 1, "threads": "per request"}
    else:
        server_facts = {
            "kind": "gunicorn",
            "command": f"chainmatch serve --workers {workers} --threads {threads}",
            "worker_class": WORKER_CLASS,
            "workers": workers,
            "threads": threads,
            "worker_index_status_at_start": worker_status,
        }
    generator = {
        "tool": tool,
        "connections": clients,
        "keep_alive": True,
        "session_cookie_per_client": True,
        "nice": nice if tool == "wrk" else 0,
    }
    if tool == "wrk":
        generator["version"] = wrk_version()
        generator["threads"] = clients
    server_facts["nice"] = nice
    return {
        "bench": "web",
        "n": n,
        "clients": clients,
        "seconds_per_page": seconds,
        "server": server_facts,
        "load_generator": generator,
        "database": "postgresql" if database_url.startswith("postgresql") else "sqlite",
        "setup_seconds": round(setup.seconds, 1),
        "server_start_seconds": round(boot.seconds, 1),
        "warm_up_seconds": round(warm.seconds + warm_load.seconds, 1),
        "server_rss_mb": server_rss,
        "pages": results,
        "machine": machine_facts(),
    }
