"""Helpers about the machine's processes: a process's command line, the owner id of a process that has ended."""

from __future__ import annotations

import socket
import subprocess


def cmdline(pid: int | str) -> str:
    """The command line of process `pid` ("" when it has gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def dead_owner() -> str:
    """An owner id of this machine whose process has ended."""
    done = subprocess.Popen(["true"])
    done.wait()
    return f"{socket.gethostname()}:{done.pid}:1"
