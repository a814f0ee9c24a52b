"""The lead pipeline's funnel chart (Chart.js in a real browser) counts leads in whole numbers."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def _one_lead(server) -> None:
    """A lead of the demo cluster (created through the lead service, as the 加入招商线索 button does)."""
    from webapp.extensions import db
    from webapp.leads.service import create_lead

    with server.app.app_context():
        create_lead(db.session, server.cluster_id, server.leader_id, None)
        db.session.commit()
        db.session.remove()


def test_funnel_axis_ticks_are_whole_numbers(page, live_server):
    _one_lead(live_server)  # with 1–2 leads Chart.js's default value axis would step by 0.1
    login(page, live_server, "staff")
    page.goto(f"{live_server.url}/leads/")
    page.wait_for_selector("#funnel-chart[data-chart-drawn='1']", state="attached")
    ticks = page.evaluate("""() => {
        const chart = Chart.getChart(document.getElementById('funnel-chart'));
        return chart.scales.x.ticks.map(t => t.value);
    }""")
    assert len(ticks) >= 2 and max(ticks) >= 1
    assert all(float(v).is_integer() for v in ticks), ticks
    assert not page.js_errors, page.js_errors
