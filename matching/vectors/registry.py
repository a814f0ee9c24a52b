"""Vector index backends by name: creating a new index on one, loading a saved one by its metadata.

A backend is a (create, load) pair. `create(count, dim, exact_max, kind, refine)` returns a new empty VectorIndex for
a pool of `count` vectors; `load(path, expected, mmap_store)` reads one its `save` wrote, whose metadata JSON must
name the backend ("backend": name) so that loading dispatches on it. Built in: "faiss" (the default,
matching.vectors.faiss_index), "numpy" (exact, in RAM, matching.vectors.numpy_index) and "milvus" (embedded
milvus-lite or a Milvus server by URI, matching.vectors.milvus_index; pymilvus is imported only when it is used).
Another vector service (Qdrant, OpenSearch k-NN) plugs in with register_backend and is chosen by
MatchEngine(vector_backend=…), i.e. by the web app's CHAINMATCH_VECTOR_BACKEND option (docs/scaling.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from matching.vectors.base import KIND_AUTO, KIND_FLAT, KIND_IVFPQ, VECTOR_KINDS, VectorIndex
from matching.vectors.faiss_index import DEFAULT_REFINE, FaissIndex
from matching.vectors.meta import IndexMismatchError, meta_path, read_meta
from matching.vectors.milvus_index import MilvusIndex
from matching.vectors.numpy_index import NumpyIndex

DEFAULT_EXACT_MAX = 200_000  # pools up to this size get an exact index by default, larger ones IVF-PQ
DEFAULT_BACKEND = "faiss"
_BACKENDS: dict[str, tuple[Callable[..., VectorIndex], Callable[..., VectorIndex]]] = {}
_FIELD_BACKENDS: set[str] = set()  # backends whose indexes store scalar fields (VectorIndex.stores_fields)


def register_backend(
    name: str, create: Callable[..., VectorIndex], load: Callable[..., VectorIndex], stores_fields: bool = False
) -> None:
    """Make a VectorIndex implementation available under `name`; `stores_fields`: its indexes do."""
    _BACKENDS[str(name)] = (create, load)
    if stores_fields:
        _FIELD_BACKENDS.add(str(name))
    else:
        _FIELD_BACKENDS.discard(str(name))


def backend_stores_fields(name: str) -> bool:
    """Whether indexes of backend `name` store scalar fields, known without creating one (a Milvus index starts
    an engine): callers then give documents their fields."""
    return str(name) in _FIELD_BACKENDS


def backend_names() -> tuple[str, ...]:
    """The registered backend names, sorted."""
    return tuple(sorted(_BACKENDS))


def _backend(name: str) -> tuple[Callable[..., VectorIndex], Callable[..., VectorIndex]]:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown vector index backend {name!r}; registered: {', '.join(backend_names())}") from None


def choose_kind(count: int, exact_max: int = DEFAULT_EXACT_MAX, kind: str = KIND_AUTO) -> str:
    """The index kind for a pool of `count` vectors: exact up to `exact_max`, IVF-PQ above (unless forced)."""
    if kind not in VECTOR_KINDS:
        raise ValueError(f"unknown vector index kind {kind!r}; use one of {VECTOR_KINDS}")
    if kind != KIND_AUTO:
        return kind
    return KIND_FLAT if count <= exact_max else KIND_IVFPQ


def make_vector_index(
    count: int,
    dim: int,
    exact_max: int = DEFAULT_EXACT_MAX,
    kind: str = KIND_AUTO,
    refine: str = DEFAULT_REFINE,
    backend: str = DEFAULT_BACKEND,
) -> VectorIndex:
    """A new, empty vector index fitting a pool of `count` vectors of dimension `dim` (`refine`: see REFINE_KINDS)."""
    return _backend(backend)[0](count, dim, exact_max=exact_max, kind=kind, refine=refine)


def load_vector_index(
    path: Path, expected: Mapping[str, Any] | None = None, mmap_store: bool | None = None
) -> VectorIndex:
    """Load any saved vector index (the backend is named in its metadata); `mmap_store`: see FaissIndex.load."""
    meta = read_meta(meta_path(Path(path)))
    name = meta.get("backend", DEFAULT_BACKEND)
    if name not in _BACKENDS:
        raise IndexMismatchError(f"unknown index backend {name!r}")
    return _BACKENDS[name][1](path, expected, mmap_store=mmap_store)


def _create_faiss(
    count: int, dim: int, exact_max: int = DEFAULT_EXACT_MAX, kind: str = KIND_AUTO, refine: str = DEFAULT_REFINE
) -> VectorIndex:
    return FaissIndex(dim, choose_kind(count, exact_max, kind), refine=refine)


def _load_faiss(path: Path, expected: Mapping[str, Any] | None = None, mmap_store: bool | None = None) -> VectorIndex:
    return FaissIndex.load(path, expected, mmap_store=mmap_store)


def _create_numpy(
    count: int, dim: int, exact_max: int = DEFAULT_EXACT_MAX, kind: str = KIND_AUTO, refine: str = DEFAULT_REFINE
) -> VectorIndex:
    """An exact NumpyIndex at any pool size (`exact_max` and `refine` do not apply)."""
    if kind not in (KIND_AUTO, KIND_FLAT):
        choose_kind(count, exact_max, kind)  # an unknown kind: the same error as on faiss
        raise ValueError(f"the numpy vector backend is exact only (kind {KIND_FLAT!r}), not {kind!r}")
    return NumpyIndex(dim)


def _create_milvus(
    count: int, dim: int, exact_max: int = DEFAULT_EXACT_MAX, kind: str = KIND_AUTO, refine: str = DEFAULT_REFINE
) -> VectorIndex:
    """A MilvusIndex: exact FLAT up to `exact_max`, an inverted-file index above (`refine` does not apply)."""
    return MilvusIndex(dim, choose_kind(count, exact_max, kind))


register_backend(DEFAULT_BACKEND, _create_faiss, _load_faiss)
register_backend(NumpyIndex.backend, _create_numpy, NumpyIndex.load)
register_backend(MilvusIndex.backend, _create_milvus, MilvusIndex.load, stores_fields=MilvusIndex.stores_fields)
