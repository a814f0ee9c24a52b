"""CLI: chains/clusters import, list, export; gaps, lists, evaluate — JSON outputs and errors."""

from __future__ import annotations

import json

from openpyxl import load_workbook

from tests.worlds.chains import CHAIN_YAML, cluster_yaml, make_firms, write
from webapp.extensions import db

ROSTER = """\
- {firm: demo-f1, role: 龙头, links: [tc-mid-a]}
- {firm: demo-f2, role: 配套, links: [tc-up-a]}
- {firm: demo-f3, role: 配套, links: [tc-up-a]}
"""
EXTRA = """\
indicators:
  - {year: 2024, revenue: 10000, leading_revenue: 5000, tax: 20000, fixed_investment: 280000}
"""


def invoke_json(runner, args: list[str]):
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def load_world(app, runner, tmp_path) -> None:
    result = runner.invoke(args=["chains", "import", str(write(tmp_path, "tc.yaml", CHAIN_YAML))])
    assert result.exit_code == 0, result.output
    with app.app_context():
        make_firms(db.session, 3)
    result = runner.invoke(
        args=["clusters", "import", str(write(tmp_path, "tcl.yaml", cluster_yaml(roster=ROSTER, extra=EXTRA)))]
    )
    assert result.exit_code == 0, result.output


def test_chains_import_list_export(app, runner, tmp_path):
    load_world(app, runner, tmp_path)
    assert invoke_json(runner, ["chains", "list", "--json"]) == [
        {"id": "tc", "name": "测试产业链", "sector": "测试", "version": 1, "links": 8, "depth": 2}
    ]
    again = runner.invoke(args=["chains", "import", str(tmp_path / "tc.yaml")])
    assert again.exit_code == 0 and "unchanged" in again.output
    out = tmp_path / "out.yaml"
    result = runner.invoke(args=["chains", "export", "tc", str(out)])
    assert result.exit_code == 0 and out.exists()
    reimport = invoke_json(runner, ["chains", "import", str(out), "--json"])
    assert reimport[0]["unchanged"] is True
    bad = runner.invoke(args=["chains", "export", "nope", str(out)])
    assert bad.exit_code != 0 and "不存在" in bad.output


def test_chains_import_errors_exit_nonzero_with_file_and_line(runner, tmp_path):
    path = write(tmp_path, "bad.yaml", CHAIN_YAML.replace("stage: 下游", "stage: 末端"))
    result = runner.invoke(args=["chains", "import", str(path)])
    assert result.exit_code != 0
    assert f"{path}:33:" in result.output and "末端" in result.output
    missing = runner.invoke(args=["chains", "import", str(tmp_path / "none.yaml")])
    assert missing.exit_code != 0 and "路径不存在" in missing.output


def test_clusters_list_and_unknown_firm(app, runner, tmp_path):
    load_world(app, runner, tmp_path)
    assert invoke_json(runner, ["clusters", "list", "--json"])[0] | {} == {
        "id": "tcl",
        "name": "测试集聚区",
        "chains": ["tc"],
        "firms": 3,
        "province": "山东省",
        "city": "青岛市",
        "cluster_type": "新能源汽车",
    }
    bad = write(tmp_path, "bad.yaml", cluster_yaml("bad", roster="- firm: demo-ghost\n"))
    result = runner.invoke(args=["clusters", "import", str(bad)])
    assert result.exit_code != 0 and "demo-ghost" in result.output and f"{bad}:" in result.output


def test_gaps_json(app, runner, tmp_path):
    load_world(app, runner, tmp_path)
    data = invoke_json(runner, ["gaps", "tcl", "--json"])
    assert data["cluster"]["id"] == "tcl"
    (chain,) = data["chains"]
    assert chain["chain_id"] == "tc"
    links = {link["link_id"]: link for link in chain["links"]}
    assert {k: (link["status"], link["firms"]) for k, link in links.items() if link["is_leaf"]} == {
        "tc-up-a": ("一般", 2),
        "tc-up-b": ("空白", 0),
        "tc-mid-a": ("优势", 1),
        "tc-mid-b": ("空白", 0),
        "tc-mid-c": ("空白", 0),
        "tc-down": ("空白", 0),
    }
    assert links["tc-up"]["name"] == "原材料" and links["tc-up"]["stage"] == "上游"
    assert chain["rollup"]["leaf_links"] == 6 and chain["rollup"]["local_rate"] == round(2 / 6, 4)
    one = invoke_json(runner, ["gaps", "tcl", "--chain", "tc", "--json"])
    assert one["chains"][0]["chain_id"] == "tc"
    for args in (["gaps", "nope", "--json"], ["gaps", "tcl", "--chain", "nope"]):
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and "不" in result.output


def test_lists_export_xlsx_and_csv(app, runner, tmp_path):
    load_world(app, runner, tmp_path)
    xlsx = tmp_path / "lists.xlsx"
    result = runner.invoke(args=["lists", "tcl", "--chain", "tc", "--export", str(xlsx)])
    assert result.exit_code == 0, result.output
    wb = load_workbook(xlsx)
    assert "龙头骨干企业清单" in wb.sheetnames and "卡脖子技术清单" in wb.sheetnames
    assert wb["龙头骨干企业清单"]["B2"].value == "测试企业1"
    csv_path = tmp_path / "weak.csv"
    result = runner.invoke(args=["lists", "tcl", "--chain", "tc", "--list", "weak_links", "--export", str(csv_path)])
    assert result.exit_code == 0 and csv_path.read_text(encoding="utf-8-sig").startswith("序号,环节")
    data = invoke_json(runner, ["lists", "tcl", "--chain", "tc", "--json"])
    assert [d["name"] for d in data][0] == "龙头骨干企业清单"
    bad = runner.invoke(args=["lists", "tcl", "--chain", "tc", "--export", str(tmp_path / "x.pdf")])
    assert bad.exit_code != 0 and "xlsx" in bad.output


def test_evaluate_json(app, runner, tmp_path):
    load_world(app, runner, tmp_path)
    rules = {r["code"]: r for r in invoke_json(runner, ["evaluate", "tcl", "--json"])}
    assert rules["leading_concentration"]["value"] == 50 and rules["leading_concentration"]["pass"] is True
    assert rules["leading_concentration"]["threshold"] == 50
    assert rules["investment_intensity"]["value"] == 280 and rules["investment_intensity"]["pass"] is True
    assert rules["tax_per_mu"]["value"] == 20 and rules["tax_per_mu"]["pass"] is True
    assert rules["same_type_per_city"]["pass"] is True
    result = runner.invoke(args=["evaluate", "nope", "--json"])
    assert result.exit_code != 0 and "集聚区不存在" in result.output
