"""Display helpers shared by the candidate, enterprise and supplier pages: highlighted snippets, channel labels."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

from markupsafe import Markup, escape

SNIPPET_CHARS = 160  # characters of business scope shown per candidate
CHANNEL_LABELS = {
    "bm25": "词语匹配",
    "char": "字符匹配",
    "tfidf": "文本相似",
    "dense": "语义向量",
    "name": "名称匹配",
    "keyword": "关键词命中",
    "learned": "学习重排",
}


def channel_label(name: str) -> str:
    return CHANNEL_LABELS.get(name, name)


@lru_cache(maxsize=1024)
def _pattern(words: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


def highlight(text: str, terms: Iterable[str], limit: int | None = SNIPPET_CHARS) -> Markup:
    """`text` escaped, cut to `limit` characters, with every matched term wrapped in <mark>."""
    text = text or ""
    if limit and len(text) > limit:
        text = text[:limit] + "…"
    words = sorted({t for t in terms if t and t.strip()}, key=len, reverse=True)
    if not words:
        return Markup(escape(text))
    out, pos = [], 0
    for match in _pattern(tuple(words)).finditer(text):
        out.append(escape(text[pos : match.start()]))
        out.append("<mark>")
        out.append(escape(match.group(0)))
        out.append("</mark>")
        pos = match.end()
    out.append(escape(text[pos:]))
    # Adjacent matches (jieba splits 船用钢板 into 船用 + 钢板) read better as one highlight.
    return Markup("".join(out).replace("</mark><mark>", ""))


def register(bp) -> None:
    """Make the helpers available as template filters of the app."""
    bp.add_app_template_filter(highlight, "highlight_terms")
    bp.add_app_template_filter(channel_label, "channel_label")
