"""A private, throw-away PostgreSQL server for fault tests that stop and restart the database server.

The shared test server must never be restarted; this one lives in a temporary folder on its own port and is
removed afterwards. Needs the PostgreSQL server binaries (initdb, pg_ctl); as root they run as user postgres.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_TIMEOUT_S = 60
SERVER_USER = "postgres"


def available() -> bool:
    """Whether a private server can be made here."""
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        return False
    return os.geteuid() != 0 or shutil.which("runuser") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    """Start, stop and restart one private server."""

    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port, self.data = base, port, base / "data"
        self._as_user = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=SERVER_TIMEOUT_S)

    def init(self) -> None:
        self._run(shutil.which("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            shutil.which("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.base / "server.log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        self._run(shutil.which("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private server; stopped and deleted on exit."""
    base = Path(tempfile.mkdtemp(prefix="cm-pg-"))
    os.chmod(base, 0o755)
    if os.geteuid() == 0:
        shutil.chown(base, SERVER_USER, SERVER_USER)
    server = PrivatePostgres(base, free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(base, ignore_errors=True)
