"""Matching service layer: glues the database to `matching` (no blueprint; used by views, CLI and init).

Profiles from Enterprise rows, a per-app engine cache saved under INDEX_DIR and synced incrementally,
candidates with explanations, roster placement, look-alikes, feedback and learning.
"""

from __future__ import annotations

from webapp.services.match.candidates import candidates, firm_on_link, look_alikes, search
from webapp.services.match.embed_job import run_embedding
from webapp.services.match.engine_build import rebuild
from webapp.services.match.engine_state import SyncResult, Watermark, current_watermark
from webapp.services.match.filters import CandidateFilters
from webapp.services.match.learning import record_feedback, relearn
from webapp.services.match.placement import Suggestion, confirm_assignments, place_roster
from webapp.services.match.profiles import profile_for
from webapp.services.match.results import STATE_FALLBACK, Candidate, CandidatePage, CandidateQuery, MatchError
from webapp.services.match.serving import active_embedder_info, ensure_index_async, wait_for_background
from webapp.services.match.store import sync

__all__ = [
    "STATE_FALLBACK",
    "Candidate",
    "CandidatePage",
    "CandidateFilters",
    "CandidateQuery",
    "MatchError",
    "Suggestion",
    "SyncResult",
    "Watermark",
    "active_embedder_info",
    "candidates",
    "firm_on_link",
    "confirm_assignments",
    "current_watermark",
    "ensure_index_async",
    "look_alikes",
    "place_roster",
    "profile_for",
    "rebuild",
    "record_feedback",
    "relearn",
    "run_embedding",
    "search",
    "sync",
    "wait_for_background",
]
