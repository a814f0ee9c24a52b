"""The served engine's hubness (webapp.services.match.hubness): measured over every chain's links when the index is
synced, measured again when the links change, and seen in the candidates' order and scores."""

from __future__ import annotations

import logging

from matching.engine.hubness import bank_key
from tests.worlds.match_seed import CLUSTER_ID, seeded  # noqa: F401 - seeded is a fixture
from tests.worlds.world import add_chain
from webapp.extensions import db
from webapp.services import match as matchsvc
from webapp.services.match import engine_state, store
from webapp.services.match.hubness import hubness_stale, link_bank, refresh_hubness


def test_sync_measures_hubness_over_every_chains_links(app, seeded):
    state = store.state_of(app)
    bank = link_bank(db.session, app)
    assert bank and state.engine.hubness_key == bank_key(bank)
    assert state.engine.compute_hubness(bank).key == state.engine.hubness_key


def test_a_firm_and_link_score_the_same_on_the_candidates_and_the_firm_page(app, seeded):
    """The correction is applied to searches and to query_scores alike, so the 0–100 match score of a candidate
    is the one its own page shows for that link."""
    from chains.enterprise_models import Enterprise
    from webapp.firms.search import links_fitting

    key = _link_keys(app)[0]
    page = matchsvc.candidates(db.session, CLUSTER_ID, key, None, 5, 0)
    assert page.items and store.state_of(app).engine.hubness_key is not None
    chain_id = page.link.chain_id
    for c in page.items:
        fits = links_fitting(db.session, app, db.session.get(Enterprise, c.enterprise_id), [chain_id], 1000)
        assert {f.link_key: f.score for f in fits}[key] == c.match_score, c.name


def test_a_new_chain_makes_the_hubness_stale_until_the_next_sync(app, seeded):
    state = store.state_of(app)
    before = state.engine.hubness_key
    add_chain(
        db.session,
        "extra",
        "新增测试产业链",
        "测试",
        "e" * 64,
        [dict(key="extra-a", stage="上游", depth=1, name="碳纤维复合材料", keywords=["碳纤维"], products=[])],
    )
    db.session.commit()
    state.hub_checked_at = float("-inf")  # a request looks at most every HUB_CHECK_SECONDS
    assert hubness_stale(app, db.session, state)
    assert not hubness_stale(app, db.session, state)  # looked at just now: not again before the interval
    matchsvc.sync(db.session, app)
    assert state.engine.hubness_key not in (None, before)
    assert state.engine.hubness_key == bank_key(link_bank(db.session, app))
    assert refresh_hubness(app, db.session, state) is False  # nothing changed since


def _link_keys(app) -> list[str]:
    from webapp.services.match.links import cluster_or_error, link_set

    return list(link_set(db.session, cluster_or_error(db.session, CLUSTER_ID)).links)


def test_another_process_reads_the_measure_saved_beside_the_index(app, seeded, caplog):
    key = store.state_of(app).engine.hubness_key
    assert key is not None
    app.extensions.pop(engine_state.EXTENSION_KEY)  # a fresh process: a web worker, the CLI
    caplog.set_level(logging.INFO, logger="chainmatch.matchsvc")
    caplog.clear()
    assert matchsvc.sync(db.session, app).rebuilt is False
    assert store.state_of(app).engine.hubness_key == key
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hubness over")]
    assert len(messages) == 1 and " read in " in messages[0]
