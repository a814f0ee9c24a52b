"""Learning from confirmed link assignments: helps on related queries, is not adopted when it does not help."""

from __future__ import annotations

from matching.engine import MatchEngine
from matching.learning import LabelledQuery, evaluate_gain, learn, merge_negatives
from matching.metrics import mean, ndcg_at_k
from tests.worlds.learning import INDUSTRIES, TEST_VARIANTS, TRAIN_VARIANTS, VARIANTS, synthetic_pool


def examples(members, variants):
    return [LabelledQuery(v.format(ind), list(ids)) for ind, ids in members.items() for v in variants]


def mean_ndcg(engine, exs):
    return mean(ndcg_at_k([h.id for h in engine.search(e.query, k=20)], set(e.relevant), 10) for e in exs)


def test_learning_from_confirmed_links_improves_related_queries():
    docs, members = synthetic_pool()
    engine = MatchEngine()
    engine.build(docs)
    train, test = examples(members, TRAIN_VARIANTS), examples(members, TEST_VARIANTS)
    before = mean_ndcg(engine, test)
    before_confirmed = mean_ndcg(engine, train)
    model = learn(engine, train)
    assert model.adopted, model.report
    assert model.report["gain"] > 0
    assert engine.apply_learning(model)
    after = mean_ndcg(engine, test)
    assert after > before + 0.1
    # Asking a confirmed link's query again never ranks its confirmed firms lower than before learning.
    assert mean_ndcg(engine, train) >= before_confirmed
    hit = engine.search(test[0].query, k=1)[0]
    assert "learned" in hit.channels


def test_learning_is_not_adopted_when_it_cannot_help():
    docs, members = synthetic_pool()
    engine = MatchEngine()
    engine.build(docs)
    # The default ranking already puts each query's confirmed firms first: nothing left to gain.
    exact = [LabelledQuery(f"{ind}{suffix}", members[ind][:2]) for ind in INDUSTRIES for suffix in ("产品研发", "系统")]
    model = learn(engine, exact)
    assert model.report["baseline_ndcg10"] > 0.95
    assert not model.adopted, model.report
    assert model.report["gain"] < 0.005
    assert not engine.apply_learning(model)
    assert engine.learned is None


def test_too_few_examples_are_not_learned_from():
    docs, members = synthetic_pool()
    engine = MatchEngine()
    engine.build(docs)
    model = learn(engine, examples(members, VARIANTS[:1])[:3])
    assert not model.adopted and "fewer" in model.report["reason"]


def test_evaluate_gain_reports_baseline_and_learned_on_disjoint_folds():
    docs, members = synthetic_pool()
    engine = MatchEngine()
    engine.build(docs)
    report = evaluate_gain(engine, examples(members, VARIANTS), folds=3)
    assert report["folds"] == 3 and report["queries"] == len(INDUSTRIES) * len(VARIANTS)
    assert report["learned_ndcg10"] > report["baseline_ndcg10"]


def test_not_relevant_feedback_overrides_a_confirmation():
    merged = merge_negatives([LabelledQuery("正极材料", [1, 2, 3])], {"正极材料": [2], "其他": [9]})
    assert len(merged) == 1 and merged[0].relevant == [1, 3] and merged[0].irrelevant == [2]


def test_learned_engine_saves_and_loads(tmp_path):
    docs, members = synthetic_pool()
    engine = MatchEngine()
    engine.build(docs)
    engine.apply_learning(learn(engine, examples(members, TRAIN_VARIANTS)))
    query = TEST_VARIANTS[0].format("半导体")
    before = [h.id for h in engine.search(query, k=10)]
    engine.save(tmp_path / "e")
    loaded = MatchEngine.load(tmp_path / "e")
    assert loaded.learned is not None and loaded.info()["learned"]["adopted"]
    assert [h.id for h in loaded.search(query, k=10)] == before
