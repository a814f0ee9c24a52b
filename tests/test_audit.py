"""The audit log records who changed what; only admins can read it."""
from __future__ import annotations

from webapp.audit import record
from webapp.extensions import db


def test_admin_reads_audit_entries_escaped(app, auth, client):
    with app.test_request_context():
        record("lead.stage", "lead", 7, cluster_id="c1", old="候选", new="<script>x</script>")
        db.session.commit()
    auth.login_as("admin")
    html = client.get("/audit/").get_data(as_text=True)
    assert "lead.stage" in html and "cli" in html
    assert "<script>x</script>" not in html


def test_audit_log_is_admin_only(auth, client):
    assert client.get("/audit/").status_code == 302  # anonymous → login
    auth.login_as("staff")
    assert client.get("/audit/").status_code == 403
