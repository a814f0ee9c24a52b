"""WSGI entry point for production servers: `webapp.wsgi:app` (what `chainmatch serve` runs under gunicorn)."""

from __future__ import annotations

from webapp import create_app

app = create_app()
