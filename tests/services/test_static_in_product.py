"""The product's choice of embedder: `chainmatch embedder train-static` trains a static embedder from the configured
model on the registry; CHAINMATCH_EMBEDDER=static (or auto above CHAINMATCH_STATIC_EMBEDDER_ABOVE firms) then indexes
with it — vectors at once, no background job — and the index names it, so its vectors never mix with the
transformer's."""

from __future__ import annotations

import pytest

from matching.embedders import EmbedderUnavailableError
from tests.conftest import make_app
from tests.worlds.e5_app import tiny_e5  # noqa: F401 - fixture
from tests.worlds.match_seed import seed
from webapp.extensions import db
from webapp.services import match as matchsvc
from webapp.services.match import embedding, serving, store


@pytest.fixture
def apps(database_url, tmp_path, tiny_e5):  # noqa: F811 - fixture
    """make(**config): apps over one database and one models folder, with the tiny e5-shaped model as teacher."""
    made = []

    def make(**config):
        app = make_app(
            database_url,
            tmp_path / f"app{len(made)}",
            EMBEDDING_MODEL=str(tiny_e5),
            EMBEDDING_BACKEND="torch",
            MODEL_DIR=str(tmp_path / "models"),
            **config,
        )
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _train(app) -> str:
    result = app.test_cli_runner().invoke(args=["embedder", "train-static", "--sample", "40", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    return result.output


def test_static_setting_without_a_trained_model_says_how_to_train_one(apps):
    app = apps(EMBEDDER="static")
    with app.app_context():
        seed(db.session)
        with pytest.raises(EmbedderUnavailableError, match="chainmatch embedder train-static"):
            embedding.expected_embedder_name(app)


def test_a_trained_static_embedder_indexes_at_once_and_is_named_in_the_index(apps):
    app = apps(EMBEDDER="static")
    with app.app_context():
        ids = seed(db.session)
    output = _train(app)
    assert "已训练静态嵌入器" in output and f"训练样本 {len(ids)} 家企业" in output
    with app.app_context():
        assert matchsvc.sync(db.session, app).rebuilt
        state = store.state_of(app)
        assert state.meta["embedder"].startswith("static:") and state.meta["vectors"] == store.VECTORS_READY
        assert len(state.engine.vector_index) == len(ids)  # encoded inline: no embedding job to wait for
        hits = state.engine.search("锂离子电池电芯", k=5)
        assert hits and any("dense" in h.channels for h in hits)
        info = serving.active_embedder_info(app, db.session)
        assert info["embedder"] == state.meta["embedder"] and info["model"].startswith("静态嵌入器")
    status = app.test_cli_runner().invoke(args=["index", "status"])
    assert status.exit_code == 0 and "static:" in status.output


def test_auto_uses_the_static_embedder_only_for_registries_above_the_threshold(apps):
    small_threshold, large_threshold = (
        apps(EMBEDDER="auto", STATIC_EMBEDDER_ABOVE=5),
        apps(EMBEDDER="auto", STATIC_EMBEDDER_ABOVE=100_000),
    )
    with small_threshold.app_context():
        seed(db.session)
        assert embedding.embedder_kind(small_threshold) == embedding.KIND_TRANSFORMER  # none trained yet
    _train(small_threshold)
    with small_threshold.app_context():
        small_threshold.extensions.pop("chainmatch.pool_size", None)
        assert embedding.embedder_kind(small_threshold) == embedding.KIND_STATIC
        assert embedding.expected_embedder_name(small_threshold).startswith("static:")
    with large_threshold.app_context():
        assert embedding.embedder_kind(large_threshold) == embedding.KIND_TRANSFORMER
        assert embedding.expected_embedder_name(large_threshold) == embedding.transformer_name(large_threshold)
        assert embedding.vectors_deferred(large_threshold)  # the transformer still builds lexical-first
