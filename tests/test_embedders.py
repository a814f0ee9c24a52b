"""Embedders: a tiny sentence-transformers model built here, loaded through the real offline loading code."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from matching.embedders import (
    EmbedderUnavailableError,
    SentenceTransformerEmbedder,
    load_embedder,
    make_embedder,
    save_embedder,
)
from matching.vector_index import load_vector_index, make_vector_index

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
    chars = sorted(set("".join(SAMPLE_TEXTS) + "企业公司有限责任科技材料设备制造生产销售研发服务"
                       + "abcdefghijklmnopqrstuvwxyz0123456789"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(raw)
    config = BertConfig(vocab_size=len(vocab), hidden_size=TINY_HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(TINY_HIDDEN, "mean")], device="cpu")
    out = Path(folder) / "tiny-st"
    model.save(str(out))
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("model"))


def test_local_model_loads_and_encodes_normalised_float32(tiny_model):
    embedder = make_embedder(str(tiny_model))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.name == "st:" + str(tiny_model.resolve())
    assert embedder.dim == TINY_HIDDEN
    vectors = embedder.encode(SAMPLE_TEXTS)
    assert vectors.shape == (len(SAMPLE_TEXTS), TINY_HIDDEN) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # Same text, same vector; different texts differ.
    again = embedder.encode(SAMPLE_TEXTS[:1])
    np.testing.assert_allclose(again[0], vectors[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[2])
    tokens = embedder._model.tokenizer.tokenize(SAMPLE_TEXTS[0])
    assert "[UNK]" not in tokens  # the char vocabulary really is in use
    assert embedder.encode([]).shape == (0, TINY_HIDDEN)


def test_embedder_identity_goes_into_index_metadata(tiny_model, tmp_path):
    embedder = make_embedder(str(tiny_model))
    vectors = embedder.encode(SAMPLE_TEXTS)
    index = make_vector_index(len(vectors), embedder.dim)
    index.index(np.arange(len(vectors)), vectors)
    index.metadata["embedder"] = embedder.name
    index.save(tmp_path / "v.faiss")
    loaded = load_vector_index(tmp_path / "v.faiss", expected={"embedder": embedder.name, "dim": embedder.dim})
    assert loaded.info()["embedder"] == embedder.name and loaded.info()["dim"] == TINY_HIDDEN
    _, found = loaded.search(embedder.encode([SAMPLE_TEXTS[3]]), 1)
    assert found[0][0] == 3


def test_saved_embedder_reloads_the_same_model(tiny_model, tmp_path):
    embedder = make_embedder(str(tiny_model))
    save_embedder(embedder, tmp_path / "state")
    again = load_embedder(tmp_path / "state")
    assert again.name == embedder.name and again.dim == embedder.dim
    np.testing.assert_allclose(again.encode(SAMPLE_TEXTS), embedder.encode(SAMPLE_TEXTS), rtol=1e-4, atol=1e-5)


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
