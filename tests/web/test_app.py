"""The app factory, configuration, base layout and error pages."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy import select

from webapp import config as config_module
from webapp import create_app
from webapp.extensions import db


def test_home_page_is_chinese(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "产业链精准招商匹配平台" in html


def test_page_titles_are_plain_text():
    """A title block holds the page's name only: markup put there lands in <title>, not on the page."""
    templates = sorted(Path(__file__).resolve().parents[2].glob("webapp/**/templates/**/*.html"))
    assert templates
    for path in templates:
        for title in re.findall(r"{% block title %}(.*?){% endblock %}", path.read_text(encoding="utf-8"), re.S):
            assert "<" not in title and "\n" not in title, f"{path}: {title[:60]!r}"


def test_404_page_is_chinese(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "页面不存在" in response.get_data(as_text=True)


def test_500_rolls_back_and_hides_the_trace(app, client):
    from chains.cluster_models import Cluster

    @app.route("/boom")
    def boom():
        db.session.add(Cluster(id="half-written", name="未提交"))
        db.session.flush()
        raise RuntimeError("secret internal detail")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "服务器内部错误" in html
    assert "secret internal detail" not in html and "Traceback" not in html
    with app.app_context():
        assert db.session.scalars(select(Cluster).where(Cluster.id == "half-written")).first() is None


def test_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]
    assert response.headers["X-Request-ID"]


def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path, database_url):
    config = {"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(tmp_path / "inst")}
    first = create_app(dict(config))
    second = create_app(dict(config))
    key_file = tmp_path / "inst" / "secret_key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text().strip()


def test_environment_overrides_config(monkeypatch, tmp_path):
    monkeypatch.setenv("CHAINMATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    monkeypatch.setenv("CHAINMATCH_SESSION_MINUTES", "7")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst")})
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("env.sqlite3")
    assert app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() == 7 * 60


def test_default_database_is_sqlite_in_wal_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAINMATCH_DATABASE_URL", raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst")})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + os.path.join(
        str(tmp_path / "inst"), "chainmatch.sqlite3"
    )
    with app.app_context():
        mode = db.session.execute(db.text("PRAGMA journal_mode")).scalar()
    assert mode == "wal"


def test_every_option_parses_from_its_env_name():
    env = {config_module.ENV_PREFIX + opt.env: "5" if opt.parse is int else "true" for opt in config_module.OPTIONS}
    values = config_module.options_from_env(env)
    assert set(values) == {opt.key for opt in config_module.OPTIONS}
