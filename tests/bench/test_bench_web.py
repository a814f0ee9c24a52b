"""`chainmatch bench web`'s load generators against a tiny local HTTP server (keep-alive, cookies, statuses)."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.perf import web_load


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: list = []

    def do_GET(self):  # noqa: N802 - http.server's name
        _Handler.seen.append(
            (self.headers.get("Cookie"), self.headers.get("User-Agent"), self.headers.get("HX-Request"))
        )
        status = 200 if self.headers.get("Cookie") != "session=bad" else 403
        body = "候选企业".encode() * 50
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a load generator closing its connections at the end
        pass


@pytest.fixture
def server():
    _Handler.seen = []
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/candidates/x/y"
    httpd.shutdown()
    httpd.server_close()


def _check(figures: dict, clients: int) -> None:
    assert figures["samples"] > clients and figures["p95_ms"] >= figures["p50_ms"] > 0
    assert figures["requests_per_s"] > 0 and figures["load_generator_cpu_s"] >= 0


def test_asyncio_client_sends_each_clients_cookie_and_counts_errors(server):
    cookies = ["session=a", "session=b", "session=bad"]
    figures = web_load._run_asyncio(server, cookies, {"HX-Request": "true"}, 1.0)
    _check(figures, 3)
    assert {c for c, _, _ in _Handler.seen} == set(cookies)
    assert {(ua, hx) for _, ua, hx in _Handler.seen} == {(web_load.USER_AGENT, "true")}
    bad = sum(1 for c, _, _ in _Handler.seen if c == "session=bad")
    assert figures["errors"] == bad > 0


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench-deps)")
def test_wrk_sends_each_clients_cookie(server):
    cookies = ["session=a", "session=b"]
    figures = web_load._run_wrk(server, cookies, {"HX-Request": "true"}, 1.0)
    _check(figures, 2)
    assert {c for c, _, _ in _Handler.seen} == set(cookies) and figures["errors"] == 0
    assert {(ua, hx) for _, ua, hx in _Handler.seen} == {(web_load.USER_AGENT, "true")}


def test_tool_choice():
    assert web_load.choose_tool("asyncio") == "asyncio"
    assert web_load.choose_tool("auto") == ("wrk" if shutil.which("wrk") else "asyncio")
