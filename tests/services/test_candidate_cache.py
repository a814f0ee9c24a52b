"""Per-process caches of the chain-map and candidates pages: same results as computing afresh, and never stale."""

from __future__ import annotations

import threading
import time

import pytest

from chains.cluster_models import RosterEntry
from chains.enterprise_models import Enterprise
from tests.worlds.match_seed import CHAIN_ID, CLUSTER_ID, copy_indexed, seeded  # noqa: F401 - seeded is a fixture
from webapp.extensions import db
from webapp.services import match as matchsvc
from webapp.services.match import store


def _fresh(app, link: str, filters: dict | None = None, k: int = 10, offset: int = 0) -> dict:
    state = store.state_of(app)
    state.pages.clear()
    return matchsvc.candidates(db.session, CLUSTER_ID, link, filters or {}, k=k, offset=offset).as_dict()


def test_cached_pages_equal_fresh_ones_and_are_not_shared(app, seeded):
    for link, filters, k, offset in (
        ("tev-cell", {}, 10, 0),
        ("tev-cell", {}, 3, 3),
        ("tev-chip", {}, 5, 0),
        ("tev-cell", {"exclude_cluster_firms": False}, 10, 0),
        ("tev-cell", {"exclude_cluster_city": True}, 10, 0),
    ):
        fresh = _fresh(app, link, filters, k, offset)
        first = matchsvc.candidates(db.session, CLUSTER_ID, link, filters, k=k, offset=offset)
        assert first.as_dict() == fresh  # computed, then cached
        first.items[0].name = "changed by a caller"
        first.items[0].channels.clear()
        again = matchsvc.candidates(db.session, CLUSTER_ID, link, filters, k=k, offset=offset)
        assert again.as_dict() == fresh  # from the cache, untouched by what the caller did
    assert len(store.state_of(app).pages) == 1  # the last one (_fresh empties the cache)


def test_concurrent_requests_for_a_missing_page_compute_it_once(app, seeded, monkeypatch):
    """Several users opening the same link at once (a cold server worker) wait for one ranking, not one each."""
    state = store.state_of(app)
    state.pages.clear()
    real_search, searches, release = state.engine.search, [], threading.Event()

    def held_search(*args, **kwargs):
        searches.append(1)
        release.wait(10)  # the first ranking is still running while the other requests arrive
        return real_search(*args, **kwargs)

    monkeypatch.setattr(state.engine, "search", held_search)
    pages = []

    def open_link():
        with app.app_context():
            pages.append(matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=10).as_dict())

    users = [threading.Thread(target=open_link) for _ in range(4)]
    for user in users:
        user.start()
    time.sleep(0.5)
    release.set()
    for user in users:
        user.join(30)
    assert len(pages) == 4 and all(page == pages[0] for page in pages)
    assert len(searches) == 1
    assert pages[0] == _fresh(app, "tev-cell")


def test_cache_follows_roster_and_firm_changes(app, seeded):
    before = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=10)
    top = before.items[0]
    # The top candidate joins the cluster's roster: it is no longer a candidate.
    db.session.add(RosterEntry(cluster_id=CLUSTER_ID, enterprise_id=top.enterprise_id, role="配套"))
    db.session.commit()
    after = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=10)
    assert top.enterprise_id not in [c.enterprise_id for c in after.items]
    assert after.as_dict() == _fresh(app, "tev-cell")
    # A firm is renamed: the page shows the new name at once.
    firm = db.session.get(Enterprise, after.items[0].enterprise_id)
    firm.name = firm.name + "（更名）"
    db.session.commit()
    renamed = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=10)
    assert renamed.items[0].name.endswith("（更名）")
    assert renamed.as_dict() == _fresh(app, "tev-cell")


def test_chain_versions_are_read_once_per_process(app, seeded):
    from webapp.services.match.linkcache import EXTENSION_KEY, chain_views

    views = chain_views(db.session, [CHAIN_ID])
    again = chain_views(db.session, [CHAIN_ID])
    assert views[CHAIN_ID] is again[CHAIN_ID] and len(app.extensions[EXTENSION_KEY]) == 1
    view = views[CHAIN_ID]
    assert "tev-cell" in view.by_key and "tev-cell" in view.leaves and view.queries["tev-cell"]


def _mask(html: str) -> str:
    import re

    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value="X"', html)


@pytest.fixture
def seeded_site(app, world_copy):
    """Seeded and indexed, with no app context left pushed (requests must get their own, as in production)."""
    copy_indexed(app, world_copy)


def test_rendered_fragment_cache_keeps_tokens_feedback_and_leads_current(app, seeded_site, auth, client):
    import re

    from webapp.candidates import views as candidate_views

    auth.login_as("staff", clusters=(CLUSTER_ID,))
    url, hx = f"/candidates/{CLUSTER_ID}/tev-cell", {"HX-Request": "true"}
    first = client.get(url, headers=hx).get_data(as_text=True)
    cache = app.extensions[candidate_views.FRAGMENT_CACHE_KEY]
    assert len(cache) == 1
    second = client.get(url, headers=hx).get_data(as_text=True)  # from the cache
    assert _mask(second) == _mask(first) and candidate_views._CSRF_PLACEHOLDER not in second
    # Same as a fresh render.
    cache.clear()
    assert _mask(client.get(url, headers=hx).get_data(as_text=True)) == _mask(first)
    # The token in a cached fragment is the session's own: a feedback form posted with it is accepted.
    token = re.search(r'name="csrf_token" value="([^"]+)"', second).group(1)
    firm = int(re.search(r'name="enterprise_id" value="(\d+)"', second).group(1))
    reply = client.post(
        f"{url}/feedback", data={"csrf_token": token, "enterprise_id": str(firm), "label": "relevant"}, headers=hx
    )
    assert reply.status_code == 200, reply.get_data(as_text=True)
    after = client.get(url, headers=hx).get_data(as_text=True)
    card = after[after.index(f'id="cand-{firm}"') :]
    assert 'value="relevant" class="small-button chosen" aria-pressed="true"' in card[: card.index("</li>")]
    # A lead created for a candidate shows at once too.
    reply = client.post(
        "/leads/create",
        data={
            "csrf_token": token,
            "cluster_id": CLUSTER_ID,
            "chain_id": "tev",
            "link_key": "tev-cell",
            "enterprise_id": str(firm),
        },
        headers=hx,
    )
    assert reply.status_code in (200, 201), reply.get_data(as_text=True)
    after = client.get(url, headers=hx).get_data(as_text=True)
    card = after[after.index(f'id="cand-{firm}"') :]
    assert "查看线索" in card[: card.index("</li>")]
