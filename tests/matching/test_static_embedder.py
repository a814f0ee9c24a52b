"""The static embedder: trained from a teacher on the pool's profiles it reproduces the teacher's geometry, it finds
the same tokens however texts are batched, it saves and loads to the same vectors, and its name changes with its
content (so an index is never searched with another model's vectors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.perf.pool import synthetic_pool
from matching.embedders import load_embedder, save_embedder
from matching.embedders.builtin import BuiltinEmbedder
from matching.embedders.static import (
    StaticEmbedder,
    Vocabulary,
    current_model,
    set_current,
    static_model_name,
    write_model,
)
from matching.embedders.static_training import phrases, train

TRAIN_EPOCHS = 6


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return synthetic_pool(400).texts


@pytest.fixture(scope="module")
def teacher(corpus) -> BuiltinEmbedder:
    """A real (if small) teacher: LSA fitted on the corpus; training only needs its encoders."""
    embedder = BuiltinEmbedder(dim=64)
    embedder.fit(corpus)
    return embedder


def _trained(corpus, teacher, folder: Path, epochs: int, seed: int = 0) -> StaticEmbedder:
    vocab, tables, figures = train(corpus, teacher.encode, teacher.encode_queries, epochs=epochs, seed=seed)
    return StaticEmbedder(write_model(folder, teacher.name, vocab, tables, figures))


@pytest.fixture(scope="module")
def models(tmp_path_factory, corpus, teacher) -> dict[str, StaticEmbedder]:
    folder = tmp_path_factory.mktemp("static-models")
    return {
        "start": _trained(corpus, teacher, folder, epochs=0),
        "trained": _trained(corpus, teacher, folder, epochs=TRAIN_EPOCHS),
    }


def _top10_overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(np.argsort(-x)[:10]) & set(np.argsort(-y)[:10])) / 10 for x, y in zip(a, b)]))


def test_fitting_brings_profile_vectors_and_rankings_close_to_the_teachers(corpus, teacher, models):
    target = teacher.encode(corpus)
    queries = phrases(corpus)[:40]
    teacher_ranks = teacher.encode_queries(queries) @ target.T
    cosine, overlap = {}, {}
    for label, model in models.items():
        vectors = model.encode(corpus)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
        cosine[label] = float((vectors * target).sum(axis=1).mean())
        overlap[label] = _top10_overlap(teacher_ranks, model.encode_queries(queries) @ vectors.T)
    assert cosine["trained"] > 0.95 and cosine["trained"] > cosine["start"] + 0.02
    assert overlap["trained"] >= 0.75 and overlap["trained"] > overlap["start"]


def test_tokens_are_found_alike_in_any_batch_and_never_across_punctuation():
    vocabulary = Vocabulary(["锂电池", "电池", "隔膜", "池隔"])
    texts = ["锂电池隔膜", "电池，隔膜", "", "none here"]
    rows, owners = vocabulary.spot(texts)
    found = {i: sorted(vocabulary.tokens[r] for r in rows[owners == i]) for i in range(len(texts))}
    assert found == {0: ["池隔", "电池", "锂电池", "隔膜"], 1: ["电池", "隔膜"], 2: [], 3: []}
    alone_rows, alone_owners = vocabulary.spot(["电池，隔膜"])
    assert sorted(alone_rows.tolist()) == sorted(rows[owners == 1].tolist())


def test_a_batch_encodes_as_its_texts_one_by_one(corpus, models):
    model = models["trained"]
    together = model.encode(corpus[:30])
    alone = np.vstack([model.encode([t]) for t in corpus[:30]])
    assert np.allclose(together, alone, atol=1e-5)
    assert not np.allclose(model.encode(corpus[:5]), model.encode_queries(corpus[:5]))  # two tables


def test_saved_and_loaded_it_encodes_the_same_and_its_name_follows_its_content(corpus, teacher, models, tmp_path):
    model = models["trained"]
    save_embedder(model, tmp_path / "index")
    again = load_embedder(tmp_path / "index")
    assert again.name == model.name == static_model_name(model.folder)
    assert np.allclose(again.encode(corpus[:20]), model.encode(corpus[:20]))
    assert models["start"].name != model.name
    assert model.name.startswith(f"static:{teacher.name}@")
    other_seed = _trained(corpus, teacher, tmp_path / "m", epochs=1, seed=1)
    assert other_seed.name not in (model.name, models["start"].name)


def test_the_current_model_is_the_one_last_set_for_its_teacher(models, tmp_path):
    models_dir = models["trained"].folder.parent.parent
    teacher = models["trained"].provenance["teacher"]
    assert current_model(tmp_path, teacher) is None
    set_current(models_dir, teacher, models["start"].folder)
    set_current(models_dir, teacher, models["trained"].folder)
    assert current_model(models_dir, teacher) == models["trained"].folder
    assert current_model(models_dir, "another-teacher") is None
