"""The enterprise upload page: background import, polled status, report download, roles, escaping."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from sqlalchemy import select

from chains.enterprise_models import Enterprise, ImportJob
from tests.worlds.imports import CSV_HEADER, job_id_from, upload, wait_until_finished
from webapp.extensions import db


def test_staff_uploads_polls_and_downloads_the_report(app, client, auth):
    auth.login_as("staff")
    content = (
        CSV_HEADER + "w1,<script>alert(1)</script>,,青岛市,测试,合成数据：测试\n"
        "w2,青岛海工装备有限公司,,青岛市,船舶配套,合成数据：测试\n"
        "w3,,,青岛市,缺名称,合成数据：测试\n"
    ).encode("utf-8")
    job_id = job_id_from(upload(auth, content, "企业名单.csv"))
    html = wait_until_finished(client, job_id)
    assert "已完成" in html and "新增 <strong>2</strong>" in html and "拒绝 <strong>1</strong>" in html
    with app.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status == "done" and job.counts["inserted"] == 2 and job.filename == "企业名单.csv"
        assert db.session.scalars(select(Enterprise.name).order_by(Enterprise.name)).all() == [
            "<script>alert(1)</script>",
            "青岛海工装备有限公司",
        ]
    page = client.get(f"/imports/{job_id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "缺少企业名称" in page
    report = client.get(f"/imports/{job_id}/report.csv")
    assert report.status_code == 200 and "attachment" in report.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(report.get_data().decode("utf-8-sig"))))
    assert [(r["行号"], r["结果"]) for r in rows] == [("2", "inserted"), ("3", "inserted"), ("4", "rejected")]
    index = client.get("/imports/").get_data(as_text=True)
    assert "企业名单.csv" in index and "企业导入" in index


def test_the_template_linked_from_the_page_uploads_back_once_filled_in(app, client, auth):
    auth.login_as("staff")
    index = client.get("/imports/").get_data(as_text=True)
    assert 'href="/imports/template.xlsx"' in index
    response = client.get("/imports/template.xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in response.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(response.get_data()))
    sheet = workbook.worksheets[0]
    header = [c.value for c in sheet[1]]
    sheet.append(
        [{"企业名称": "青岛海工装备有限公司", "城市": "青岛市", "数据说明": "合成数据：测试"}.get(h) for h in header]
    )
    filled = io.BytesIO()
    workbook.save(filled)
    html = wait_until_finished(client, job_id_from(upload(auth, filled.getvalue(), "企业导入模板.xlsx")))
    assert "已完成" in html and "新增 <strong>1</strong>" in html
    with app.app_context():
        assert db.session.scalars(select(Enterprise.name)).all() == ["青岛海工装备有限公司"]


def test_status_fragment_polls_until_the_job_is_finished(app, client, auth):
    auth.login_as("admin")
    with app.app_context():
        queued = ImportJob(filename="a.csv", status="queued")
        done = ImportJob(filename="b.csv", status="done", counts={"inserted": 1})
        db.session.add_all([queued, done])
        db.session.commit()
        queued_id, done_id = queued.id, done.id
    polling = client.get(f"/imports/{queued_id}/status").get_data(as_text=True)
    assert f'hx-get="/imports/{queued_id}/status"' in polling and 'hx-trigger="every 1s"' in polling
    assert f'href="/imports/{queued_id}"' in polling
    finished = client.get(f"/imports/{done_id}/status").get_data(as_text=True)
    assert "hx-trigger" not in finished and "已完成" in finished


def test_unreadable_upload_fails_with_a_chinese_error_and_changes_nothing(app, client, auth):
    auth.login_as("staff")
    job_id = job_id_from(upload(auth, b"PK\x03\x04 definitely not a workbook", "bad.xlsx"))
    html = wait_until_finished(client, job_id)
    assert "失败" in html and "无法读取文件" in html
    with app.app_context():
        assert db.session.scalars(select(Enterprise)).first() is None


def test_upload_validation(client, auth):
    auth.login_as("staff")
    response = upload(auth, b"x", "firms.pdf")
    assert response.status_code == 302
    assert "不支持的文件类型" in client.get("/imports/").get_data(as_text=True)
    response = upload(auth, b"", "empty.csv")
    assert "空的" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_firm_and_anonymous_users_are_refused(app, client, auth):
    with app.app_context():
        job = ImportJob(filename="x.csv", status="done")
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    assert client.get("/imports/").status_code in (302, 401)
    auth.login_as("firm")
    pages = ("/imports/", "/imports/template.xlsx", f"/imports/{job_id}", f"/imports/{job_id}/status")
    for path in (*pages, f"/imports/{job_id}/report.csv"):
        assert client.get(path).status_code == 403, path
    assert upload(auth, CSV_HEADER.encode(), "x.csv").status_code == 403
