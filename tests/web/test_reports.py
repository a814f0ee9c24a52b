"""招商分析报告 (.docx): every section in Chinese with charts as images, from the cluster page and the CLI."""

from __future__ import annotations

import io

import pytest
from docx import Document
from sqlalchemy import select

from chains.cluster_models import ClusterIndicator
from chains.evaluation import ALTERNATIVE_MET_NOTE
from tests.worlds.clusters import CHAIN, CLUSTER_A, CLUSTER_B, XSS_NAME, build_app_world
from webapp.extensions import db
from webapp.reports.charts import png_bytes, stacked_bars

SECTIONS = (
    "一、集聚区概况与政策规则评价",
    "二、产业链图谱缺口（按环节阶段）",
    "三、N张清单",
    "四、重点缺口环节的候选企业",
    "五、招商线索进展",
    "六、考核情况（2026Q4）",
)


@pytest.fixture
def world(world_copy):
    return world_copy(build_app_world)


def _text(data: bytes) -> tuple[str, int]:
    doc = Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    parts += [cell.text for table in doc.tables for row in table.rows for cell in row.cells]
    return "\n".join(parts), len(doc.inline_shapes)


def test_charts_are_valid_png():
    data = stacked_bars([[1, 2], [0, 3], [4, 0]], ["#ff0000", "#00ff00"])
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in data
    import numpy as np

    assert len(png_bytes(np.zeros((2, 2, 3), dtype=np.uint8))) > 40


def test_cluster_page_report_download(app, auth, world, client):
    auth.login_as("manager", clusters=(CLUSTER_A,))
    auth.post("/leads/create", {"cluster_id": CLUSTER_A, "chain_id": CHAIN, "enterprise_id": world["candidate"]})
    dashboard = client.get(f"/clusters/{CLUSTER_A}").get_data(as_text=True)
    assert f"/reports/{CLUSTER_A}/{CHAIN}.docx" in dashboard
    response = client.get(f"/reports/{CLUSTER_A}/{CHAIN}.docx?period=2026Q4")
    assert response.status_code == 200 and response.mimetype.endswith("wordprocessingml.document")
    text, pictures = _text(response.data)
    for heading in SECTIONS:
        assert heading in text, heading
    assert "甲集聚区" in text and "投资强度" in text and "空白" in text and XSS_NAME in text and pictures == 2
    assert client.get(f"/reports/{CLUSTER_B}/{CHAIN}.docx").status_code == 403
    assert client.get(f"/reports/{CLUSTER_A}/no-chain.docx").status_code == 404
    assert client.get(f"/reports/{CLUSTER_A}/{CHAIN}.docx?period=bad").status_code == 400


def test_report_command_writes_the_document(app, world, runner, tmp_path):
    with app.app_context():  # 4,250 元/m² of revenue: one land-efficiency alternative fails, the tax ones pass
        db.session.scalars(
            select(ClusterIndicator).where(ClusterIndicator.cluster_id == CLUSTER_A)
        ).one().revenue = 850000
        db.session.commit()
    out = tmp_path / "报告.docx"
    result = runner.invoke(args=["report", CLUSTER_A, "--chain", CHAIN, "--out", str(out), "--period", "2026Q4"])
    assert result.exit_code == 0, result.output
    text, pictures = _text(out.read_bytes())
    assert all(heading in text for heading in SECTIONS) and pictures == 2
    assert text.count(ALTERNATIVE_MET_NOTE) == 1  # the failed alternative's row says it does not decide the verdict
    assert runner.invoke(args=["report", "nope", "--chain", CHAIN, "--out", str(out)]).exit_code != 0
