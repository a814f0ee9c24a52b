"""`chainmatch match` and `chainmatch index` through the CLI runner, on a real database and index."""

from __future__ import annotations

import json

from tests.worlds.match_seed import CLUSTER_ID, seed
from webapp.extensions import db


def test_match_json_and_index_status(app, runner):
    with app.app_context():
        ids = seed(db.session)
    built = runner.invoke(args=["index", "build"])
    assert built.exit_code == 0, built.output
    status = runner.invoke(args=["index", "status", "--json"])
    assert status.exit_code == 0, status.output
    info = json.loads(status.output)
    assert info["embedder"].startswith("builtin-") and info["count"] == len(ids) and info["stale"] is False
    assert info["dim"] and info["kind"] == "flat"
    result = runner.invoke(args=["match", CLUSTER_ID, "tev-chip", "--json", "--top", "3", "--province", "江苏省"])
    assert result.exit_code == 0, result.output
    page = json.loads(result.output)
    assert page["link"]["key"] == "tev-chip" and len(page["items"]) <= 3
    top = page["items"][0]
    assert top["name"] == "合成功率半导体有限公司" and top["province"] == "江苏省"
    assert top["matched_products"] and top["best_link"]["key"] == "tev-chip" and top["explanation"]
    # Every filter of the table is an option: the province the first answer came from can be left out.
    outside = runner.invoke(args=["match", CLUSTER_ID, "tev-chip", "--json", "--exclude-provinces", "江苏省"])
    assert outside.exit_code == 0, outside.output
    provinces = {c["province"] for c in json.loads(outside.output)["items"]}
    assert provinces and "江苏省" not in provinces
    missing = runner.invoke(args=["match", CLUSTER_ID, "no-such-link"])
    assert missing.exit_code != 0 and "不属于" in missing.output
    # Users type a link's name as the chain map shows it; the same link, the same candidates.
    by_name = runner.invoke(args=["match", CLUSTER_ID, "功率半导体", "--json", "--top", "3", "--province", "江苏省"])
    assert by_name.exit_code == 0, by_name.output
    assert json.loads(by_name.output) == page
    # A part of a name is not guessed at: the error names the links that contain it, with their keys.
    partial = runner.invoke(args=["match", CLUSTER_ID, "半导体"])
    assert partial.exit_code != 0 and "功率半导体（tev-chip）" in partial.output
    rebuilt = runner.invoke(args=["index", "build", "--rebuild"])
    assert rebuilt.exit_code == 0 and "已重建" in rebuilt.output
