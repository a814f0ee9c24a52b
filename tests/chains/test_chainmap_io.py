"""Chain map YAML: validation errors with file and line, whole-file rejection, versioning, export round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chains.chain_models import Chain, ChainLink, ChainVersion, SupplyEdge
from chains.chainmap_io import export_chain_yaml, import_chain_file, import_chain_path
from chains.chainmap_parse import ChainMapError, industry_code_problem, parse_chain_text
from tests.worlds.chains import CHAIN_YAML, write
from webapp.extensions import db


def errors_of(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ChainMapError) as info:
        parse_chain_text(text, "bad.yaml")
    return info.value.errors


def only_error(text: str) -> tuple[int | None, str]:
    errors = errors_of(text)
    assert len(errors) == 1, errors
    file, line, message = errors[0]
    assert file == "bad.yaml"
    return line, message


def test_valid_chain_parses_with_inherited_stages():
    parsed = parse_chain_text(CHAIN_YAML, "tc.yaml")
    by_key = {link.key: link for link in parsed.links}
    assert len(parsed.links) == 8
    assert by_key["tc-up-a"].stage == "上游" and by_key["tc-up-a"].parent_key == "tc-up"
    assert by_key["tc-mid-c"].stage == "中游" and by_key["tc-mid-c"].depth == 2
    assert by_key["tc-mid-a"].key_tech is True
    assert ("tc-up-a", "tc-mid-a", "") in parsed.edges


def test_unknown_key_names_line():
    text = CHAIN_YAML.replace("        name: 负极材料\n", "        name: 负极材料\n        colour: red\n")
    line, message = only_error(text)
    assert line == 19 and "colour" in message and "未知字段" in message


def test_unknown_top_level_key():
    line, message = only_error("owner: x\n" + CHAIN_YAML)
    assert line == 1 and "owner" in message


def test_duplicate_link_id_in_file():
    text = CHAIN_YAML.replace("id: tc-mid-b", "id: tc-up-b")
    line, message = only_error(text)
    assert line == 27 and "tc-up-b" in message and "重复" in message and "第 17 行" in message


def test_link_id_must_carry_chain_prefix():
    line, message = only_error(CHAIN_YAML.replace("id: tc-up-b", "id: other-up-b"))
    assert line == 17 and "other-up-b" in message and "tc-" in message


def test_supply_cycle_is_reported_on_an_edge_line():
    text = CHAIN_YAML + "  - {from: tc-down, to: tc-up-a}\n"
    line, message = only_error(text)
    assert "环" in message and "tc-up-a" in message and "tc-down" in message
    assert line in (35, 36, 37, 38)


def test_self_loop_is_a_cycle():
    line, message = only_error(CHAIN_YAML + "  - {from: tc-down, to: tc-down}\n")
    assert line == 38 and "环" in message


def test_supply_edge_to_unknown_link():
    line, message = only_error(CHAIN_YAML + "  - {from: tc-down, to: tc-nowhere}\n")
    assert line == 38 and "tc-nowhere" in message


@pytest.mark.parametrize(
    "code,ok",
    [
        ("C", True),
        ("C38", True),
        ("C384", True),
        ("C3841", True),
        ("A01", True),
        ("T97", True),
        ("S91", True),
        ("C13", True),
        ("C43", True),
        ("C12", False),
        ("C44", False),
        ("A06", False),
        ("c3841", False),
        ("U10", False),
        ("C3", False),
        ("C38411", False),
        ("3841", False),
        ("K71", False),
        ("D44", True),
    ],
)
def test_industry_code_rules(code, ok):
    assert (industry_code_problem(code) is None) is ok


def test_malformed_industry_code_names_line():
    line, message = only_error(CHAIN_YAML.replace('["C3985"]', '["C3985", "C99"]'))
    assert line == 16 and "C99" in message and "13–43" in message


def test_empty_link_name():
    line, message = only_error(CHAIN_YAML.replace("name: 电池管理系统", 'name: ""'))
    assert line == 28 and "名称不能为空" in message


def test_bad_stage_and_missing_top_level_stage():
    line, message = only_error(CHAIN_YAML.replace("stage: 下游", "stage: 末端"))
    assert line == 33 and "末端" in message
    line, message = only_error(CHAIN_YAML.replace("    stage: 下游\n", ""))
    assert line == 31 and "stage" in message


def test_yaml_syntax_error_has_line():
    line, message = only_error(CHAIN_YAML.replace("    name: 核心部件", "    name: [核心部件"))
    assert line is not None and "语法" in message


def test_several_errors_are_collected():
    text = CHAIN_YAML.replace("stage: 下游", "stage: 末端").replace("name: 电芯", 'name: ""')
    assert len(errors_of(text)) == 2


def test_import_creates_version_with_links_and_edges(app, tmp_path):
    path = write(tmp_path, "tc.yaml", CHAIN_YAML)
    with app.app_context():
        result = import_chain_file(db.session, path)
        assert result.created and result.version == 1 and result.links == 8
        chain = db.session.get(Chain, "tc")
        assert chain.name == "测试产业链" and chain.current_version.version == 1
        keys = [link.key for link in chain.current_version.links]
        assert keys[:3] == ["tc-up", "tc-up-a", "tc-up-b"]
        assert len(chain.current_version.edges) == 3


def test_bad_file_is_rejected_whole(app, tmp_path):
    good = write(tmp_path, "tc.yaml", CHAIN_YAML)
    bad = write(
        tmp_path, "tc2.yaml", CHAIN_YAML.replace("name: 电芯", "name: 电芯X") + "  - {from: tc-down, to: tc-up-a}\n"
    )
    with app.app_context():
        import_chain_file(db.session, good)
        with pytest.raises(ChainMapError):
            import_chain_file(db.session, bad)
        assert db.session.scalar(select(func.count(ChainVersion.id))) == 1
        assert db.session.scalar(select(func.count(ChainLink.id))) == 8
        assert "电芯X" not in {link.name for link in db.session.scalars(select(ChainLink))}


def test_duplicate_link_id_across_chains_in_db(app, tmp_path):
    # Chain "tc-up" may legally prefix its links with "tc-up-", which clashes with chain tc's "tc-up-a".
    other = "id: tc-up\nname: 另一条链\nlinks:\n  - id: tc-up-a\n    name: 冲突环节\n    stage: 上游\n"
    with app.app_context():
        import_chain_file(db.session, write(tmp_path, "tc.yaml", CHAIN_YAML))
        with pytest.raises(ChainMapError) as info:
            import_chain_file(db.session, write(tmp_path, "other.yaml", other))
        ((file, line, message),) = info.value.errors
        assert file.endswith("other.yaml") and line == 4
        assert "tc-up-a" in message and "产业链 tc" in message
        assert db.session.get(Chain, "tc-up") is None


def test_reimport_unchanged_is_noop_and_change_creates_version(app, tmp_path):
    path = write(tmp_path, "tc.yaml", CHAIN_YAML)
    with app.app_context():
        first = import_chain_file(db.session, path)
        # Cosmetic changes (comments, flow style) normalise to the same content.
        write(
            tmp_path,
            "tc.yaml",
            "# comment\n"
            + CHAIN_YAML.replace("keywords: [正极, 三元材料]", "keywords:\n          - 正极\n          - 三元材料"),
        )
        again = import_chain_file(db.session, path)
        assert again.unchanged and not again.created and again.version == first.version
        assert db.session.scalar(select(func.count(ChainVersion.id))) == 1

        write(tmp_path, "tc.yaml", CHAIN_YAML.replace("name: 电池包", "name: 电池包系统"))
        changed = import_chain_file(db.session, path)
        assert changed.created and changed.version == 2
        chain = db.session.get(Chain, "tc")
        assert chain.current_version.version == 2
        versions = db.session.scalars(select(ChainVersion).order_by(ChainVersion.version)).all()
        assert [v.version for v in versions] == [1, 2]
        old_names = {link.key: link.name for link in versions[0].links}
        new_names = {link.key: link.name for link in versions[1].links}
        assert set(old_names) == set(new_names)  # keys are stable across versions
        assert old_names["tc-mid-c"] == "电池包" and new_names["tc-mid-c"] == "电池包系统"


def test_export_round_trip(app, tmp_path):
    path = write(tmp_path, "tc.yaml", CHAIN_YAML)
    with app.app_context():
        import_chain_file(db.session, path)
        text = export_chain_yaml(db.session, "tc")
        reparsed = parse_chain_text(text, "export.yaml")
        original = parse_chain_text(CHAIN_YAML, "tc.yaml")
        assert reparsed.normalised() == original.normalised()
        out = write(tmp_path, "export.yaml", text)
        result = import_chain_file(db.session, out)
        assert result.unchanged
        # An old version exports as it was.
        write(tmp_path, "tc.yaml", CHAIN_YAML.replace("name: 电池包", "name: 电池包系统"))
        import_chain_file(db.session, path)
        assert "电池包系统" not in export_chain_yaml(db.session, "tc", 1)
        assert "电池包系统" in export_chain_yaml(db.session, "tc")


def test_folder_import_rejects_only_bad_files(app, tmp_path):
    folder = tmp_path / "chains"
    folder.mkdir()
    write(folder, "a.yaml", CHAIN_YAML)
    write(folder, "b.yaml", "id: bad\nname: 坏\nlinks: []\n")
    with app.app_context():
        results, errors = import_chain_path(db.session, folder)
        assert [r.chain_id for r in results] == ["tc"]
        assert errors and errors[0][0].endswith("b.yaml")
        assert db.session.get(Chain, "bad") is None
        assert db.session.scalar(select(func.count(SupplyEdge.id))) == 3
