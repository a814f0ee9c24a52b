"""Text normalisation and tokenisation for Chinese enterprise profiles and link queries.

Word tokens come from jieba in search mode (long words plus their dictionary sub-words), which
lets "锂离子电池正极材料" match both "正极材料" and "锂离子电池". Character n-grams (1–3) are the
dictionary-free channel that catches new compounds jieba splits badly.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

# Function words and generic company/industry suffixes. Kept deliberately small: on the ICKG dev
# benchmark a long list (设备, 制造, 系统 …) cost 2 nDCG points, because those words do carry meaning.
STOPWORDS: frozenset[str] = frozenset(
    """
    的 及 与 和 或 等 其 一种 用于 基于 所述 以及 具有 包括 一 种 于 在 对 中 为 行业 产业 领域
    有限公司 有限 公司 股份 集团 责任 有限责任公司
    """.split()
)
_PUNCT_RE = re.compile(r"[\s\u3000，。；;：:、,.!！?？()（）\[\]【】《》<>“”\"'‘’/\\|+\-—_=*&^%$#@~`·…]+")

_jieba_lock = threading.Lock()
_jieba_ready = False
_jieba_words: set[str] = set()


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), lower-case, punctuation runs collapsed to one space."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return _PUNCT_RE.sub(" ", text).strip()


def _jieba() -> Any:  # the jieba module (untyped), initialised
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return jieba


def add_words(words: Iterable[str]) -> int:
    """Teach jieba domain words (e.g. chain-map keywords) so they stay whole tokens; returns how many were new."""
    jieba = _jieba()
    added = 0
    with _jieba_lock:
        for word in words:
            word = normalize(word).replace(" ", "")
            if len(word) >= 2 and word not in _jieba_words:
                jieba.add_word(word)
                _jieba_words.add(word)
                added += 1
    return added


def tokenize(text: str) -> list[str]:
    """jieba search-mode tokens of the normalised text, stopwords dropped (single characters such as 锑 kept)."""
    jieba = _jieba()
    out: list[str] = []
    for piece in normalize(text).split():
        for tok in jieba.cut_for_search(piece, HMM=True):
            tok = tok.strip()
            if not tok or tok in STOPWORDS:
                continue
            out.append(tok)
    return out


# Queries are tokenised by several channels (the word channel, the built-in embedder): remember the last few.
QUERY_TOKENS_CACHE = 256


@functools.lru_cache(maxsize=QUERY_TOKENS_CACHE)
def _query_tokens(text: str, taught: int) -> tuple[str, ...]:
    return tuple(tokenize(text))


def tokenize_query(text: str) -> list[str]:
    """tokenize(text) for a query, cached (keyed also by the words taught to jieba, which change the tokens)."""
    return list(_query_tokens(text, len(_jieba_words)))


def char_ngrams(text: str, n_min: int = 1, n_max: int = 3) -> list[str]:
    """Character n-grams inside each normalised piece (n-grams never cross punctuation)."""
    out: list[str] = []
    for piece in normalize(text).split():
        size = len(piece)
        for n in range(n_min, n_max + 1):
            out.extend(piece[i : i + n] for i in range(size - n + 1))
    return out


def tokenize_many(texts: Sequence[str]) -> list[list[str]]:
    """Tokenise a batch (kept as one place to add caching or parallelism)."""
    return [tokenize(t) for t in texts]


# A text whose letters are at least this share of Chinese characters (CJK ideographs) is in the "han" script group;
# others (English, Korean, Vietnamese, … profiles of foreign firms) are "other". The lexical channels match words
# and characters, so they cannot see a profile of the other group (matching.engine.dense: cross-language scores).
HAN_SHARE_MIN = 0.25
HAN, OTHER = 0, 1


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2EBEF or 0xF900 <= code <= 0xFAFF
    )


def script_group(text: str) -> int:
    """HAN or OTHER: the script group of a text (by the share of Chinese characters among its letters)."""
    letters = han = 0
    for ch in text or "":
        if ch.isalpha():
            letters += 1
            han += _is_han(ch)
    return HAN if letters == 0 or han >= HAN_SHARE_MIN * letters else OTHER
