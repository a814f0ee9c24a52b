"""How the Milvus backend reaches Milvus: the configured server URI, pymilvus imported on first use (with the
`pkg_resources` stand-in milvus-lite 2.5 needs), releasing an embedded milvus-lite engine, URIs without credentials."""

from __future__ import annotations

import logging
import shutil
import sys
import types
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger("matching.vectors.milvus_index")

_server_uri: str | None = None


def set_server_uri(uri: str | None) -> None:
    """Make new and loaded indexes use the Milvus server at `uri` (None or "": embedded milvus-lite)."""
    global _server_uri
    _server_uri = uri or None


def server_uri() -> str | None:
    """The configured Milvus server URI, None for embedded milvus-lite."""
    return _server_uri


def pymilvus_module() -> Any:
    """pymilvus, imported on first use. milvus-lite 2.5 imports `pkg_resources`, which setuptools ≥ 81 no longer
    ships: when it is missing, a stand-in with the two names milvus-lite reads is registered first."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        sys.modules.setdefault("pkg_resources", _pkg_resources_stand_in())
    import pymilvus

    return pymilvus


def _pkg_resources_stand_in() -> types.ModuleType:
    """A module with `get_distribution(name).version` and `DistributionNotFound`, read from importlib.metadata."""
    module = types.ModuleType("pkg_resources")

    class DistributionNotFound(Exception):
        """The named distribution is not installed."""

    def get_distribution(name: str) -> types.SimpleNamespace:
        try:
            return types.SimpleNamespace(version=importlib_metadata.version(name))
        except importlib_metadata.PackageNotFoundError as exc:
            raise DistributionNotFound(name) from exc

    setattr(module, "DistributionNotFound", DistributionNotFound)
    setattr(module, "get_distribution", get_distribution)
    return module


def release_lite(client: Any, db_file: Path | None, workdir: Path | None) -> None:
    """Close a client, stop its milvus-lite engine and remove its private folder (safe to call twice)."""
    try:
        client.close()
    except Exception:  # noqa: BLE001 - closing is best effort
        logger.debug("closing a Milvus client failed", exc_info=True)
    if db_file is not None:
        from milvus_lite.server_manager import server_manager_instance

        if str(db_file.resolve()) in server_manager_instance._servers:
            server_manager_instance.release_server(str(db_file))
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def public_uri(uri: str | None) -> str:
    """`uri` without user name and password (what a saved index may record)."""
    parts = urlsplit(uri or "")
    if not parts.password and not parts.username:
        return uri or ""
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
