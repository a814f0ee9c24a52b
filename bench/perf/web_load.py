"""The web benchmark's load generators: `wrk` driven by a Lua script, or a minimal asyncio HTTP/1.1 keep-alive client.

Each requests one page for a fixed time with one keep-alive connection per client, each client with its own session
cookie, and reports latency percentiles, throughput and the load generator's own CPU time.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time

from bench.perf.machine import Stopwatch, percentiles_ms

USER_AGENT = "chainmatch-bench/1"  # the same for login and load: sessions are bound to address + browser
TOOLS = ("auto", "wrk", "asyncio")


def _niceness(nice: int):
    """A preexec_fn giving a child process `nice` (negative values need root), or None for the default."""
    return (lambda: os.nice(nice)) if nice else None


_WRK_SCRIPT = """
local cookies = %(cookies)s
local extra = %(extra)s
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("cookie", cookies[((counter - 1) %% #cookies) + 1])
end
function init(args)
  wrk.headers["Cookie"] = cookie
  wrk.headers["User-Agent"] = "%(agent)s"
  for k, v in pairs(extra) do wrk.headers[k] = v end
end
function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 95, 99}) do p[#p + 1] = string.format('"p%%d_ms": %%.2f', q, latency:percentile(q) / 1000) end
  io.write(string.format('WRK-JSON {"requests": %%d, "duration_us": %%d, "mean_ms": %%.2f, "errors_status": %%d, ' ..
    '"errors_other": %%d, %%s}\\n', summary.requests, summary.duration, latency.mean / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, table.concat(p, ", ")))
end
"""


def _lua_table(values) -> str:
    if isinstance(values, dict):
        return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in values.items()) + "}"
    return "{" + ", ".join(json.dumps(v) for v in values) + "}"


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else "wrk"


def _run_wrk(url: str, cookies: list[str], headers: dict, seconds: float, nice: int = 0) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_WRK_SCRIPT % {"cookies": _lua_table(cookies), "extra": _lua_table(headers), "agent": USER_AGENT})
        script = fh.name
    try:
        clients = len(cookies)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [
                "wrk",
                "-t",
                str(clients),
                "-c",
                str(clients),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                "60s",
                "-s",
                script,
                url,
            ],
            capture_output=True,
            text=True,
            preexec_fn=_niceness(nice),
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.unlink(script)
    line = next((text for text in done.stdout.splitlines() if text.startswith("WRK-JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    data = json.loads(line[len("WRK-JSON ") :])
    wall = data["duration_us"] / 1e6
    return {
        "p50_ms": data["p50_ms"],
        "p95_ms": data["p95_ms"],
        "p99_ms": data["p99_ms"],
        "mean_ms": data["mean_ms"],
        "samples": data["requests"],
        "requests_per_s": round(data["requests"] / wall, 1),
        "errors": data["errors_status"] + data["errors_other"],
        "load_generator_cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
        "wall_s": round(wall, 1),
    }


async def _asyncio_client(host: str, port: int, request: bytes, stop_at: float, times: list, errors: list) -> None:
    reader = writer = None
    try:
        while time.monotonic() < stop_at:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:  # the server closed an idle connection: reconnect and retry
                writer.close()
                reader = writer = None
                continue
            status = int(status_line.split()[1])
            length, chunked, close = None, False, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection" and value == "close":
                    close = True
            if chunked:
                while True:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length is not None:
                await reader.readexactly(length)
            else:
                await reader.read()
                close = True
            times.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
            if close:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


def _run_asyncio(url: str, cookies: list[str], headers: dict, seconds: float, nice: int = 0) -> dict:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    times: list[float] = []
    errors: list[int] = []

    async def main() -> float:
        stop_at = time.monotonic() + seconds
        requests = []
        for cookie in cookies:
            lines = [
                f"GET {parts.path} HTTP/1.1",
                f"Host: {parts.netloc}",
                f"User-Agent: {USER_AGENT}",
                f"Cookie: {cookie}",
                *[f"{k}: {v}" for k, v in headers.items()],
            ]
            requests.append(("\r\n".join(lines) + "\r\n\r\n").encode())
        with Stopwatch() as wall:
            await asyncio.gather(
                *[_asyncio_client(parts.hostname, parts.port, r, stop_at, times, errors) for r in requests]
            )
        return wall.seconds

    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = _run_own_loop(main)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        **percentiles_ms(times),
        "requests_per_s": round(len(times) / wall, 1),
        "errors": len(errors),
        "load_generator_cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
        "wall_s": round(wall, 1),
    }


def _run_own_loop(main):
    """asyncio.run(main()) in a thread of its own: the caller's thread may already run an event loop (Playwright's
    sync API keeps one running for the whole browser-test session)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def choose_tool(tool: str) -> str:
    if tool == "auto":
        return "wrk" if shutil.which("wrk") else "asyncio"
    if tool == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    return tool
