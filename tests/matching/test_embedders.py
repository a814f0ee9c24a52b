"""Embedders: a tiny sentence-transformers model built here, loaded through the real offline loading code.

The ONNX backends run the real export (torch.onnx), int8 quantisation and onnxruntime on that model.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from matching.embedders import (
    EmbedderUnavailableError,
    SentenceTransformerEmbedder,
    embedder_name_for,
    load_embedder,
    make_embedder,
    onnx_export,
    onnx_runtime,
    save_embedder,
)
from matching.vectors import load_vector_index, make_vector_index

TINY_HIDDEN = 32
SAMPLE_TEXTS = ["动力电池电芯制造", "锂离子电池正极材料", "船舶配套设备", "海洋工程装备", "汽车电子控制器"]


def build_tiny_sentence_transformer(folder: Path) -> Path:
    """Write a tiny random BERT (hidden 32, 2 layers, a char vocabulary) as a sentence-transformers model folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    raw = Path(folder) / "raw-bert"
    raw.mkdir(parents=True)
    chars = sorted(
        set(
            "".join(SAMPLE_TEXTS)
            + "企业公司有限责任科技材料设备制造生产销售研发服务"
            + "abcdefghijklmnopqrstuvwxyz0123456789"
        )
    )
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(raw)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(TINY_HIDDEN, "mean")], device="cpu")
    out = Path(folder) / "tiny-st"
    model.save(str(out))
    return out


LONG_TEXT = "光伏组件逆变器储能系统集成" * 10  # beyond the tiny model's 64 tokens: truncation must agree
AGREEMENT_TEXTS = [*SAMPLE_TEXTS, LONG_TEXT, "", "abc 123 电池"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> Path:
    """One export cache shared by this module's tests (each export takes a few seconds)."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    """Exports without an explicit cache folder go to a temporary XDG cache, not the user's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_local_model_loads_and_encodes_normalised_float32(tiny_model):
    embedder = make_embedder(str(tiny_model), backend="torch")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.name == "st:" + str(tiny_model.resolve()) and embedder.backend == "torch"
    assert embedder.dim == TINY_HIDDEN
    vectors = embedder.encode(SAMPLE_TEXTS)
    assert vectors.shape == (len(SAMPLE_TEXTS), TINY_HIDDEN) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # Same text, same vector; different texts differ.
    again = embedder.encode(SAMPLE_TEXTS[:1])
    np.testing.assert_allclose(again[0], vectors[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[2])
    tokens = embedder.tokenizer.tokenize(SAMPLE_TEXTS[0])
    assert "[UNK]" not in tokens  # the char vocabulary really is in use
    assert embedder.encode([]).shape == (0, TINY_HIDDEN)


def test_embedder_identity_goes_into_index_metadata(tiny_model, tmp_path, onnx_cache):
    embedder = make_embedder(str(tiny_model), cache_dir=onnx_cache)
    vectors = embedder.encode(SAMPLE_TEXTS)
    index = make_vector_index(len(vectors), embedder.dim)
    index.index(np.arange(len(vectors)), vectors)
    index.metadata["embedder"] = embedder.name
    index.save(tmp_path / "v.faiss")
    loaded = load_vector_index(tmp_path / "v.faiss", expected={"embedder": embedder.name, "dim": embedder.dim})
    assert loaded.info()["embedder"] == embedder.name and loaded.info()["dim"] == TINY_HIDDEN
    _, found = loaded.search(embedder.encode([SAMPLE_TEXTS[3]]), 1)
    assert found[0][0] == 3


@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_saved_embedder_reloads_the_same_model_and_backend(tiny_model, tmp_path, onnx_cache, backend):
    embedder = make_embedder(str(tiny_model), backend=backend, cache_dir=onnx_cache)
    save_embedder(embedder, tmp_path / "state")
    spec = json.loads((tmp_path / "state" / "embedder.json").read_text(encoding="utf-8"))
    assert spec["backend"] == backend and spec["type"] == "sentence-transformers"
    exports = onnx_export.exports
    again = load_embedder(tmp_path / "state")
    assert onnx_export.exports == exports  # the reload reuses the cached export
    assert again.name == embedder.name and again.dim == embedder.dim and again.backend == backend
    np.testing.assert_allclose(again.encode(SAMPLE_TEXTS), embedder.encode(SAMPLE_TEXTS), rtol=1e-4, atol=1e-5)


def test_state_saved_before_backends_existed_loads_on_torch(tiny_model, tmp_path):
    (tmp_path / "embedder.json").write_text(
        json.dumps(
            {"type": "sentence-transformers", "name": "st:" + str(tiny_model), "model": str(tiny_model), "dim": 32}
        )
    )
    assert load_embedder(tmp_path).backend == "torch"


@pytest.mark.parametrize("backend, minimum", [("onnx", 0.999), ("onnx-int8", 0.99)])
def test_onnx_backends_agree_with_torch_per_text(tiny_model, onnx_cache, backend, minimum):
    torch_vectors = make_embedder(str(tiny_model), backend="torch").encode(AGREEMENT_TEXTS)
    embedder = make_embedder(str(tiny_model), backend=backend, cache_dir=onnx_cache)
    assert embedder.backend == backend and embedder.name == f"st:{tiny_model.resolve()}#{backend}"
    assert embedder.name == embedder_name_for(str(tiny_model), backend)
    vectors = embedder.encode(AGREEMENT_TEXTS, batch_size=3)  # several batches, sorted by length inside
    assert vectors.shape == (len(AGREEMENT_TEXTS), TINY_HIDDEN) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert _cosines(vectors, torch_vectors).min() >= minimum
    # Rows come back in the caller's order whatever the batch size. (int8 dynamic quantisation scales the
    # activations per batch, so a text's int8 vector moves slightly with its batch-mates.)
    again = embedder.encode(AGREEMENT_TEXTS)
    if backend == "onnx":
        np.testing.assert_allclose(again, vectors, rtol=1e-4, atol=1e-5)
    assert _cosines(again, vectors).min() >= 0.999
    assert embedder.encode([]).shape == (0, TINY_HIDDEN)


def test_a_query_vector_does_not_depend_on_the_queries_encoded_with_it(tiny_model, onnx_cache):
    """int8 quantises activations per batch, so queries are encoded one by one: a link scored among the hubness bank
    or a firm's fitting links must score as the same link searched alone."""
    together = make_embedder(str(tiny_model), backend="onnx-int8", cache_dir=onnx_cache).encode_queries(AGREEMENT_TEXTS)
    alone = make_embedder(str(tiny_model), backend="onnx-int8", cache_dir=onnx_cache)
    one_by_one = np.stack([alone.encode_queries([t])[0] for t in AGREEMENT_TEXTS])
    np.testing.assert_array_equal(together, one_by_one)


def test_auto_backend_is_onnx_int8_when_onnxruntime_is_installed(tiny_model, onnx_cache):
    embedder = make_embedder(str(tiny_model), cache_dir=onnx_cache)
    assert embedder.backend == "onnx-int8" and embedder.requested_backend == "auto"
    assert embedder_name_for(str(tiny_model)) == embedder.name


def test_export_is_written_once_and_reused(tiny_model, tmp_path):
    cache = tmp_path / "cache"
    before = onnx_export.exports
    first = make_embedder(str(tiny_model), backend="onnx-int8", cache_dir=cache)
    assert onnx_export.exports == before + 1
    (folder,) = cache.iterdir()  # one folder, named by the model files' fingerprint
    assert folder.name == onnx_export.model_fingerprint(tiny_model)[:32]
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "model-int8.onnx", "model.onnx", "pipeline.json"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    spec = json.loads((folder / "pipeline.json").read_text(encoding="utf-8"))
    assert spec["pooling"] == ["mean"] and spec["agreement_min_cosine"]["onnx-int8"] >= 0.99

    second = make_embedder(str(tiny_model), backend="onnx-int8", cache_dir=cache)
    fp32 = make_embedder(str(tiny_model), backend="onnx", cache_dir=cache)  # the fp32 file came with the int8 one
    assert onnx_export.exports == before + 1
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes
    np.testing.assert_array_equal(second.encode(SAMPLE_TEXTS), first.encode(SAMPLE_TEXTS))
    assert fp32.backend == "onnx"

    # A copy of the same files elsewhere has the same fingerprint: no new export.
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    make_embedder(str(copy), backend="onnx-int8", cache_dir=cache)
    assert onnx_export.exports == before + 1 and len(list(cache.iterdir())) == 1
    # Changed model files are another model: exported again, into another folder.
    (copy / "README.md").write_text("changed", encoding="utf-8")
    make_embedder(str(copy), backend="onnx-int8", cache_dir=cache)
    assert onnx_export.exports == before + 2 and len(list(cache.iterdir())) == 2


def _variant(tiny_model: Path, folder: Path, pooling, normalize: bool) -> Path:
    """A copy of the tiny model with another Pooling config (and a Normalize module)."""
    out = shutil.copytree(tiny_model, folder)
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps({"embedding_dimension": TINY_HIDDEN, "pooling_mode": pooling, "include_prompt": True}),
        encoding="utf-8",
    )
    if normalize:
        modules = json.loads((out / "modules.json").read_text(encoding="utf-8"))
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            }
        )
        (out / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
        (out / "2_Normalize").mkdir()
        (out / "2_Normalize" / "config.json").write_text("{}", encoding="utf-8")
    return out


@pytest.mark.parametrize("pooling, normalize", [("cls", False), ("max", True), (["mean", "max"], False)])
def test_onnx_pools_as_the_model_config_says(tiny_model, tmp_path, pooling, normalize):
    model = _variant(tiny_model, tmp_path / "variant", pooling, normalize)
    torch_embedder = make_embedder(str(model), backend="torch")
    onnx_embedder = make_embedder(str(model), backend="onnx", cache_dir=tmp_path / "cache")
    assert onnx_embedder.backend == "onnx" and onnx_embedder.dim == torch_embedder.dim
    assert onnx_embedder.dim == TINY_HIDDEN * (2 if isinstance(pooling, list) else 1)
    spec = json.loads(next((tmp_path / "cache").glob("*/pipeline.json")).read_text(encoding="utf-8"))
    assert spec["pooling"] == ([pooling] if isinstance(pooling, str) else pooling) and spec["normalize"] == normalize
    cosines = _cosines(onnx_embedder.encode(AGREEMENT_TEXTS), torch_embedder.encode(AGREEMENT_TEXTS))
    assert cosines.min() >= 0.999


def test_missing_onnxruntime_falls_back_to_torch_with_a_warning(tiny_model, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    assert onnx_runtime.runtime_missing()
    assert embedder_name_for(str(tiny_model)) == "st:" + str(tiny_model.resolve())
    with caplog.at_level(logging.WARNING, logger="matching.embedders"):
        embedder = make_embedder(str(tiny_model), backend="auto", cache_dir=tmp_path / "cache")
    assert embedder.backend == "torch" and embedder.name == "st:" + str(tiny_model.resolve())
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "falling back to torch" in warning and "onnxruntime is not available" in warning
    assert not (tmp_path / "cache").exists()  # nothing exported
    assert embedder.encode(SAMPLE_TEXTS).shape == (len(SAMPLE_TEXTS), TINY_HIDDEN)
    # An explicit ONNX backend falls back the same way.
    assert make_embedder(str(tiny_model), backend="onnx-int8").backend == "torch"


def test_a_pipeline_onnx_does_not_reproduce_runs_on_torch(tiny_model, tmp_path, caplog):
    model = _variant(tiny_model, tmp_path / "weighted", "weightedmean", False)
    with caplog.at_level(logging.WARNING, logger="matching.embedders"):
        embedder = make_embedder(str(model), backend="onnx-int8", cache_dir=tmp_path / "cache")
    assert embedder.backend == "torch" and "weightedmean" in caplog.text
    assert embedder_name_for(str(model), "onnx-int8") == embedder.name


def test_unknown_backend_is_refused(tiny_model):
    with pytest.raises(EmbedderUnavailableError, match="unknown embedding backend"):
        make_embedder(str(tiny_model), backend="tensorrt")
    from webapp.config import options_from_env

    assert options_from_env({"CHAINMATCH_EMBEDDING_BACKEND": " ONNX-int8"})["EMBEDDING_BACKEND"] == "onnx-int8"
    with pytest.raises(EmbedderUnavailableError, match="未知的嵌入后端"):
        embedder_name_for(str(tiny_model), "tensorrt")  # status displays report it the same way


def test_app_config_reaches_the_embedder(tiny_model, tmp_path):
    from matching.engine import Document, MatchEngine
    from tests.conftest import make_app
    from webapp.services.match import embedding

    app = make_app(
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        tmp_path,
        EMBEDDING_MODEL=str(tiny_model),
        EMBEDDING_BACKEND="onnx-int8",
        EMBEDDING_THREADS=1,
    )
    embedder = embedding.embedder_for(app)
    engine = MatchEngine(embedder=embedder)
    assert embedder.backend == "onnx-int8" and embedder.threads == 1
    assert embedder.name == embedding.expected_embedder_name(app)
    assert list((tmp_path / "instance" / "models" / "onnx-cache").glob("*/model-int8.onnx"))  # the instance's cache
    engine.build([Document(i, f"企业{i}", text) for i, text in enumerate(SAMPLE_TEXTS)])
    engine.save(tmp_path / "engine")
    loaded = MatchEngine.load(tmp_path / "engine")
    assert loaded.embedder.backend == "onnx-int8" and loaded.embedder.name == embedder.name


def test_missing_model_gives_a_bilingual_error_and_downloads_nothing(tmp_path):
    with pytest.raises(EmbedderUnavailableError) as missing:
        make_embedder(str(tmp_path / "no-such-model"))
    assert "找不到嵌入模型" in str(missing.value) and "not found locally" in str(missing.value)
    # A hub name that is not in the local cache is not fetched: loading fails offline.
    with pytest.raises(EmbedderUnavailableError):
        make_embedder("chainmatch-test/definitely-not-cached-model")
    # A folder that exists but holds no model fails the same way.
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmbedderUnavailableError):
        make_embedder(str(tmp_path / "empty"))
