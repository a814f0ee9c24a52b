"""The matching service with a tiny multilingual-e5-shaped embedder: the model, an app using it, a seeded index."""

from __future__ import annotations

from pathlib import Path

import pytest

from matching.embedders import e5_bundle
from tests.conftest import make_app
from tests.worlds.e5_bundle_files import write_tiny_bundle
from tests.worlds.match_seed import CLUSTER_ID, seed
from webapp.extensions import db
from webapp.services import match as matchsvc


@pytest.fixture(scope="module")
def tiny_e5(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-e5")
    return e5_bundle.convert(write_tiny_bundle(folder / "tiny-q4.bin"), folder / "model") and folder / "model"


@pytest.fixture
def e5_app(database_url, tmp_path, tiny_e5):
    app = make_app(database_url, tmp_path, EMBEDDING_MODEL=str(tiny_e5), EMBEDDING_BACKEND="torch")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def embedded(e5_app) -> dict[str, int]:
    """The seeded world indexed with its vectors attached (as `chainmatch init` leaves it): name → id."""
    with e5_app.app_context():
        ids = seed(db.session)
        matchsvc.sync(db.session, e5_app)
    assert matchsvc.run_embedding(e5_app)
    return ids


class Counting:
    """The configured embedder, counting the profiles it encodes (and failing after `fail_after`, as a crash would)."""

    def __init__(self, inner, fail_after: int | None = None) -> None:
        self.inner, self.fail_after, self.encoded = inner, fail_after, []

    def encode(self, texts, batch_size=256):
        if self.fail_after is not None and len(self.encoded) + len(texts) > self.fail_after:
            raise RuntimeError("worker killed")
        self.encoded.extend(texts)
        return self.inner.encode(texts, batch_size)

    def __getattr__(self, name):  # everything else (queries, save, …) is the model's own
        return getattr(self.inner, name)


def served_channels(app) -> set[str]:
    with app.app_context():
        page = matchsvc.candidates(db.session, CLUSTER_ID, "tev-cell", {}, k=3)
        return set(page.items[0].channels)
