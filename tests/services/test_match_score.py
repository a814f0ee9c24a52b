"""The 0–100 match score and the graded evidence users read, and that one firm and link score alike on every page."""

from __future__ import annotations

import re

from matching.fusion import FusionWeights
from matching.scoring import MATCH_SCORE_MID, match_score
from tests.worlds.e5_app import e5_app, embedded, tiny_e5  # noqa: F401 - fixtures
from tests.worlds.match_seed import CLUSTER_ID, seeded  # noqa: F401 - seeded is a fixture
from webapp.extensions import db
from webapp.firms.search import links_fitting
from webapp.services import match as matchsvc


def test_match_score_is_a_monotone_0_to_100_map_of_the_average_z_score():
    lexical = FusionWeights()  # bm25 0.5 + char 0.5: the fused score is the average z itself
    scores = [match_score(z, lexical, dense_active=False) for z in (-5, 0, 3, MATCH_SCORE_MID, 9, 12, 40)]
    assert scores == sorted(scores) and scores[0] == 0 and scores[-1] == 100
    assert match_score(MATCH_SCORE_MID, lexical, dense_active=False) == 50
    with_dense = FusionWeights(dense=3.0)  # weights sum to 4: the same average z, the same score
    assert match_score(4 * MATCH_SCORE_MID, with_dense, dense_active=True) == 50
    assert match_score(4 * MATCH_SCORE_MID, with_dense, dense_active=False) == 100  # vectors pending: lexical only
    assert match_score(float("nan"), lexical, dense_active=False) == 0


def test_a_firm_scores_the_same_for_a_link_on_its_candidates_page_and_on_its_own_page(app, seeded):
    page = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=5)
    top = page.items[0]
    assert 0 <= top.match_score <= 100 and top.match_score >= page.items[-1].match_score
    from chains.enterprise_models import Enterprise

    firm = db.session.get(Enterprise, top.enterprise_id)
    fits = {f.link_key: f for f in links_fitting(db.session, app, firm, ["tev"], k=10)}
    assert fits["tev-cell"].score == top.match_score
    assert top.best_link.key == "tev-cell" and top.best_link.score == top.match_score


def test_evidence_is_strong_for_a_product_match_and_medium_for_words_of_the_scope(app, seeded):
    page = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=15)
    by_name = {c.name: c for c in page.items}
    strong = by_name["合成新能源电池有限公司"]  # main products 三元电芯: a product of the link
    assert strong.evidence == "strong" and strong.evidence_label == "强"
    assert strong.explanation[0].startswith("证据强")
    medium = by_name["合成正极材料股份有限公司"]  # cathode maker: battery words, none of the cell link's products
    assert medium.evidence == "medium" and medium.matched_terms and not medium.matched_products
    # The built-in embedder carries no fusion weight: firms sharing no word are fillers, not semantic matches.
    filler = [c for c in page.items if not c.matched_terms and not c.matched_products]
    assert filler and all(c.evidence == "none" and c.explanation[0].startswith("无匹配证据") for c in filler)


def test_a_firm_found_by_the_embedding_alone_is_marked_weak(e5_app, embedded):  # noqa: F811 - fixtures
    with e5_app.app_context():
        page = matchsvc.candidates(db.session, CLUSTER_ID, "tev-chip", {"exclude_cluster_firms": False}, k=25)
        weak = [c for c in page.items if c.evidence == "weak"]
        assert weak, "a pool of 28 firms ranked 25 deep has firms sharing no word with the chip link"
        for c in weak:
            assert not c.matched_terms and not c.matched_products and c.channels.get("dense") is not None
            assert any("仅语义相似" in r for r in c.explanation)


def test_pages_show_the_0_to_100_score_and_the_evidence(client, auth, app, seeded):
    auth.login_as("admin")
    html = client.get(f"/candidates/{CLUSTER_ID}/tev-cell").get_data(as_text=True)
    scores = [int(s) for s in re.findall(r"匹配度 (\d+)</span>", html)]
    assert scores and all(0 <= s <= 100 for s in scores) and scores == sorted(scores, reverse=True)
    assert "证据强" in html
