"""What a candidate search asks and returns: the query value, candidate rows and pages, the user-facing error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from chains.enterprise_models import region_of
from webapp.services.match import evidence as evidence_module
from webapp.services.match.filters import CandidateFilters

DEFAULT_K = 20
MAX_K = 500

STATE_READY = "ready"
STATE_FALLBACK = "fallback"


class MatchError(LookupError):
    """Unknown cluster / link / enterprise; the message is for users (Chinese)."""


@dataclass
class LinkRef:
    chain_id: str
    key: str
    name: str
    score: float | None = None


@dataclass
class Candidate:
    enterprise_id: int
    name: str
    rank: int
    score: float
    province: str = ""
    city: str = ""
    country: str = ""
    status: str = ""
    tags: list[str] = field(default_factory=list)
    channels: dict[str, float] = field(default_factory=dict)
    matched_terms: list[str] = field(default_factory=list)
    matched_products: list[str] = field(default_factory=list)
    best_link: LinkRef | None = None
    similar_local: dict | None = None  # {"enterprise_id", "name", "similarity" (0–100)}
    explanation: list[str] = field(default_factory=list)  # Chinese reasons for the UI
    match_score: int | None = None  # 0–100 (webapp.services.match.evidence); None on the keyword fallback
    evidence: str = ""  # strong / medium / weak (webapp.services.match.evidence)

    @property
    def evidence_label(self) -> str:
        return evidence_module.LABELS.get(self.evidence, "")

    @property
    def region(self) -> str:
        return region_of(self.province, self.city)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["region"] = self.region
        data["evidence_label"] = self.evidence_label
        return data


@dataclass
class CandidatePage:
    cluster_id: str
    link: LinkRef
    items: list[Candidate]
    offset: int
    k: int
    state: str = STATE_READY
    message: str = ""
    embedder: str = ""
    filters: dict = field(default_factory=dict)
    # Everything the page was computed from (None: not cacheable, e.g. the keyword fallback); views may key
    # their own caches of what they derive from the page on it.
    cache_key: tuple | None = field(default=None, repr=False, compare=False)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def as_dict(self) -> dict:
        return {
            "cluster_id": self.cluster_id,
            "link": asdict(self.link),
            "offset": self.offset,
            "k": self.k,
            "state": self.state,
            "message": self.message,
            "embedder": self.embedder,
            "filters": self.filters,
            "items": [c.as_dict() for c in self.items],
        }


@dataclass(frozen=True)
class CandidateQuery:
    """One candidate search, built once by whoever asks (the candidates page from its form, the API from its query
    schema, `chainmatch match` from its options: each through webapp.services.match.filter_fields)."""

    cluster_id: str
    link_key: str
    filters: CandidateFilters = field(default_factory=CandidateFilters)
    k: int = DEFAULT_K
    offset: int = 0

    @classmethod
    def of(
        cls,
        cluster_id: str,
        link_key: str,
        filters: Mapping[str, Any] | CandidateFilters | None = None,
        k: int = DEFAULT_K,
        offset: int = 0,
    ) -> "CandidateQuery":
        """From filter values in any accepted form, with the page clamped to what the matcher ranks."""
        return cls(
            cluster_id,
            link_key,
            CandidateFilters.from_mapping(filters),
            max(1, min(int(k), MAX_K)),
            max(0, int(offset)),
        )
