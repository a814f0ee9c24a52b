"""One Milvus search call, its results read straight into arrays.

`MilvusClient.search` turns every hit into a Python dict (pymilvus's `Hit`, a UserDict per hit): for the 1,000 hits
of a match query on the saved 1M collection that doubled the call (100 searches one at a time: 23.4 ms through
`MilvusClient.search`, 12.5 ms reading the reply's arrays, the same ids and scores). The engine only needs the ids
and scores, which the reply holds as two packed arrays, so the request is sent on the client's own connection and
those arrays are read as they are. This reaches into pymilvus's client (`_get_connection`, the handler's `_stub`,
`Prepare`), which the pin in pyproject.toml (pymilvus 2.5.18) fixes; if that inside is not there, or the direct call
fails, the search goes through `MilvusClient.search` (with its retries) and gives the same arrays
(tests/matching/test_vector_backends.py checks both agree and that the index takes the direct path).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger("matching.vectors.milvus_index")

Hits = list[tuple[np.ndarray, np.ndarray]]  # per query: (int64 ids, float32 scores), best first, ties by id


@dataclass(frozen=True)
class SearchCall:
    """What one search asks of a collection: query rows, hits per query, search parameters, a filter expression."""

    collection: str
    queries: np.ndarray
    limit: int
    params: dict[str, Any]
    expression: str
    anns_field: str
    id_field: str


def search_hits(client: Any, call: SearchCall) -> Hits:
    """Per query row: the ids and scores Milvus found, ordered by score descending, then id ascending."""
    try:
        return direct_search(client, call)
    except Exception as exc:  # noqa: BLE001 - any failure of the shortcut takes the public call, which reports it
        logger.debug("direct Milvus search unavailable (%s); using MilvusClient.search", exc)
    return public_search(client, call)


def public_search(client: Any, call: SearchCall) -> Hits:
    """As search_hits, through `MilvusClient.search`."""
    results = client.search(
        call.collection,
        data=list(call.queries),
        limit=call.limit,
        search_params=call.params,
        filter=call.expression,
        anns_field=call.anns_field,
    )
    out = []
    for hits in results:
        ids = np.fromiter((int(h[call.id_field]) for h in hits), np.int64, len(hits))
        scores = np.fromiter((float(h["distance"]) for h in hits), np.float64, len(hits))
        out.append(_ordered(ids, scores))
    return out


def direct_search(client: Any, call: SearchCall) -> Hits:
    """As search_hits, on the client's gRPC stub, the reply's id and score arrays read whole."""
    from pymilvus.client.prepare import Prepare
    from pymilvus.client.utils import check_status

    handler = client._get_connection()
    request = Prepare.search_requests_with_expr(
        call.collection, list(call.queries), call.anns_field, call.params, call.limit, call.expression, expr_params={}
    )
    response = handler._stub.Search(request)
    check_status(response.status)
    res = response.results
    if len(res.topks) != len(call.queries):
        raise ValueError(f"{len(res.topks)} result lists for {len(call.queries)} queries")
    ids = np.asarray(res.ids.int_id.data, np.int64)
    scores = np.asarray(res.scores, np.float64)
    if len(ids) != len(scores):
        raise ValueError("reply has unequal id and score arrays")
    out, start = [], 0
    for topk in res.topks:
        out.append(_ordered(ids[start : start + topk], scores[start : start + topk]))
        start += topk
    return out


def _ordered(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order].astype(np.float32)
