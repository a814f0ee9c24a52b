"""What users read about a match: its 0–100 match score and how strong the evidence behind it is.

The score is matching.scoring's, from the engine's fused score (or, when an adopted learned re-ranker ordered the
page, its probability ×100), so one firm and link score the same on every page. Evidence is graded:
- strong (强): a product, keyword or synonym of the link (for a free-text need: the need's own words) appears in the
  firm's main products, industry or name;
- medium (中): such a term appears only in its business scope (经营范围), or the lexical channels matched words of
  the query in its profile;
- weak (弱): no word in common — the firm was found by the embedding model's semantic similarity alone;
- none (无): no word in common and no dense channel either (a firm listed only to fill a short page).
"""

from __future__ import annotations

from collections.abc import Sequence

from chains.enterprise_models import Enterprise
from matching.text import normalize

STRONG, MEDIUM, WEAK, NONE = "strong", "medium", "weak", "none"
LABELS = {STRONG: "强", MEDIUM: "中", WEAK: "弱", NONE: "无"}
REASONS = {
    STRONG: "证据强：产品/关键词匹配",
    MEDIUM: "证据中：经营范围或检索词匹配",
    WEAK: "证据弱：仅语义相似（嵌入模型）",
    NONE: "无匹配证据：无共同词，亦无语义通道",
}


def normalized_terms(terms: Sequence[str]) -> list[tuple[str, str]]:
    """(term, its normalised form without spaces) for substring tests against normalised firm text."""
    return [(t, normalize(t).replace(" ", "")) for t in terms if t]


def _text(*parts: str | None) -> str:
    return normalize(" ".join(p or "" for p in parts)).replace(" ", "")


def terms_in(terms: list[tuple[str, str]], enterprise: Enterprise) -> list[str]:
    """The terms that appear in the firm's products, scope, industry or name."""
    haystack = _text(enterprise.main_products, enterprise.business_scope, enterprise.industry_name, enterprise.name)
    return [t for t, n in terms if n and n in haystack]


def grade(enterprise: Enterprise, terms: list[tuple[str, str]], matched_words: Sequence[str], semantic: bool) -> str:
    """STRONG, MEDIUM, WEAK or NONE evidence for a firm (see the module docstring); `semantic`: the dense channel
    scored it."""
    core = _text(enterprise.main_products, enterprise.industry_name, enterprise.name)
    if any(n and n in core for _, n in terms):
        return STRONG
    scope = _text(enterprise.business_scope)
    if any(n and n in scope for _, n in terms) or matched_words:
        return MEDIUM
    return WEAK if semantic else NONE


def match_score(engine, score: float, channels: dict[str, float] | None = None) -> int:
    """The 0–100 match score of a hit's score on `engine` (see the module docstring)."""
    learned = (channels or {}).get("learned")
    if learned is not None:
        return int(round(100 * float(learned)))
    return engine.match_score(score)
