"""Helpers shared by the enterprise-import tests: upload a file, read the job id, poll the job until it finishes."""

from __future__ import annotations

import io
import re
import time

POLL_TIMEOUT_S = 60
CSV_HEADER = "外部编号,企业名称,统一社会信用代码,城市,经营范围,数据说明\n"


def upload(auth, content: bytes, filename: str):
    return auth.post("/imports/", data={"file": (io.BytesIO(content), filename)}, content_type="multipart/form-data")


def job_id_from(response) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(re.search(r"/imports/(\d+)$", response.headers["Location"]).group(1))


def wait_until_finished(client, job_id: int) -> str:
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while time.monotonic() < deadline:
        html = client.get(f"/imports/{job_id}/status", headers={"HX-Request": "true"}).get_data(as_text=True)
        if 'hx-trigger="every 1s"' not in html:
            return html
        time.sleep(0.1)
    raise AssertionError("import did not finish")
