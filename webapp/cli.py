"""The `chainmatch` console script: a Flask FlaskGroup over `create_app`."""
from __future__ import annotations

from flask.cli import FlaskGroup

from webapp import create_app


def _app():
    return create_app()


cli = FlaskGroup(
    create_app=_app,
    add_version_option=False,
    load_dotenv=False,
    help="chainmatch — 产业链精准招商匹配平台 (industrial-chain investment-promotion matching).",
)


def main() -> None:
    cli(prog_name="chainmatch")


if __name__ == "__main__":  # pragma: no cover
    main()
