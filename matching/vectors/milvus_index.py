"""The Milvus backend ("milvus"): vectors in a Milvus collection, embedded (milvus-lite) or on a server by URI.

Two places the collection can live:
- embedded (no URI, the default): milvus-lite, Milvus's engine run as a local process on a `.db` file. The live
  index works on a private copy in a temporary folder; `save(path)` stops that engine for a moment and copies its
  file to `path`, `load(path)` copies `path` into a new private folder. A saved file is never written again, so an
  engine folder stays a snapshot (the web app swaps in new folders) and several worker processes can each load it
  (milvus-lite locks its file to one process).
- a Milvus server or cluster (`set_server_uri(uri)`, the web app's CHAINMATCH_VECTOR_URI): one collection
  `chainmatch_<random>` per built index (credentials may be in the URI: `https://user:password@host:19530`). The
  collection *is* the index: `save(path)` writes where it is (URI without credentials, collection), `load(path)` reconnects to it, and later appends and deletes change it in place.

Vectors are L2-normalised float32 rows searched by inner product (metric "IP"); ids are the int64 primary keys.
Kind "flat" is an exact FLAT index; kind "ivfpq" is IVF_PQ on a server and IVF_FLAT embedded (milvus-lite has no
PQ), the index type being saved in the metadata. `allowed_ids` alone is scored over the local rows (below), with
`where` it becomes an `id in [...]` filter. Beyond the common
interface, `index`/`append` take optional scalar `fields` (e.g. {"province": [...]}) stored with each vector (typed
columns when given to `index` with values of one type — text, int, float, bool, or lists of text such as tags —,
filled with an empty value for a vector appended without them; dynamic fields otherwise) and `search` takes `where`:
a matching.vectors.filters.FieldFilter (the product's region/status/tag filters) or a Milvus boolean expression over
the stored columns, so those filters run inside Milvus rather than as id lists (an id list of 26k allowed firms cost
~1.8 s per query at 1M). Text columns (and lists of text) are stored as integer codes (`filters.text_code`), which a
FieldFilter's expression compares; a hand-written expression compares them too ("province == <code>"). Milvus
filters 1M rows in about half the time on integers (a province filter 21 vs 48 ms, "other city, active" 19 vs 41
ms per search; milvus-lite 2.5.1 has no scalar index that helps: INVERTED changed nothing, BITMAP and STL_SORT are
refused), and a code computed from the text needs no dictionary shared between processes. Rosters and other
arbitrary id sets stay `allowed_ids`.
A local copy of the vectors (matching.vectors.row_store: float32 rows by id, memory-mapped once saved, written
beside the saved index as the faiss IVF-PQ backend's re-scoring rows are) answers `ids()`, `len()` and `vectors()`:
the engine scores every firm a search keeps exactly from its stored vector, and reading those back from Milvus
(`get` by id) was the largest part of a match query on this backend (docs/performance.md). Milvus does the
searches by meaning and by field; the copy is what a web worker reads from its own disk, as it reads the lexical
channels, and what an id list is scored over.
A search reads the ids and scores from Milvus's reply as arrays (matching.vectors.milvus_search): pymilvus's own
result objects, a dict per hit, took half of a 1,000-hit search. pymilvus is imported only when an index is created
or loaded, so the product needs it only when configured.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import uuid
import weakref
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from matching.vectors.base import (
    BASE_META_KEYS,
    KIND_FLAT,
    KIND_IVFPQ,
    VectorIndex,
    as_ids,
    caller_metadata,
    now,
    search_arrays,
    unique_ids,
)
from matching.vectors.filters import EMPTY, FieldFilter, milvus_expression, text_code
from matching.vectors.meta import IndexMismatchError, atomic_write_bytes, check_meta, meta_path, read_meta, write_meta
from matching.vectors.milvus_connection import public_uri, pymilvus_module, release_lite, server_uri
from matching.vectors.milvus_search import SearchCall, search_hits
from matching.vectors.row_store import RowStore

logger = logging.getLogger(__name__)

BACKEND = "milvus"
ID_FIELD = "id"
VECTOR_FIELD = "vector"
METRIC = "IP"  # inner product; on the normalised rows this is the cosine similarity
LITE_COLLECTION = "vectors"  # the one collection of an embedded (milvus-lite) file
LITE_DB_NAME = "index.db"  # pymilvus starts milvus-lite for a path ending in ".db"
WORK_PREFIX = "chainmatch-milvus-"
SERVER_COLLECTION_PREFIX = "chainmatch_"
CONNECTION_PREFIX = "chainmatch-"
MODE_LITE = "lite"
MODE_SERVER = "server"
INDEX_FLAT = "FLAT"
INDEX_IVF_FLAT = "IVF_FLAT"  # milvus-lite's only inverted-file index
INDEX_IVF_PQ = "IVF_PQ"
PQ_BITS = 8
LISTS_PER_SQRT_N = 4  # nlist ≈ 4·√n, as for faiss
MIN_NPROBE = 16
NPROBE_SHARE = 1 / 16  # a server's IVF uses it; milvus-lite 2.5.1 ignores nprobe (docs/performance-history.md)
# Rows per insert call. milvus-lite 2.5.1 slowed down sharply on larger calls (1,000 rows of 384 dims: 0.2 s;
# 5,000 in one call: 45-50 s), so inserts go in calls of at most this many rows and bytes of vectors.
INSERT_BATCH_ROWS = 1000
INSERT_BATCH_BYTES = 1_600_000
MAX_TOP_K = 16384  # Milvus's largest `limit`
SEARCH_BATCH = 256  # queries per search call
ID_LIST_BATCH = 5000  # ids per `get` call or `in [...]` delete
QUERY_PAGE = 16384  # ids per page when reading every id back
MAX_LIST_ITEMS = 256  # most items of a list field (Milvus ARRAY max_capacity), e.g. a firm's tags
TEXT = "TEXT"  # a text column, stored as INT64 text codes
TEXT_LIST = "TEXT_LIST"  # a list-of-text column (tags), stored as an ARRAY of INT64 text codes
CODED_COLUMNS = (TEXT, TEXT_LIST)
TEXT_STORED_COLUMNS = ("VARCHAR", "ARRAY")  # how indexes before text codes stored text: such an index is rebuilt
# The value a typed scalar column gets for a vector appended without it (milvus-lite 2.5 has no nullable fields).
EMPTY_VALUES: dict[str, Any] = {"BOOL": False, "INT64": 0, "DOUBLE": 0.0, TEXT: 0, TEXT_LIST: []}
META_KEYS = (*BASE_META_KEYS, "mode", "index_type", "nlist", "nprobe", "uri", "collection", "scalar_fields")


class MilvusIndex(VectorIndex):
    """A Milvus collection behind the VectorIndex interface (see the module docstring)."""

    backend = BACKEND
    stores_fields = True

    def __init__(self, dim: int, kind: str = KIND_FLAT, uri: str | None = None, collection: str | None = None) -> None:
        if kind not in (KIND_FLAT, KIND_IVFPQ):
            raise ValueError(f"unknown vector index kind {kind!r}")
        super().__init__(dim)
        self.kind = kind
        self.uri = uri if uri is not None else server_uri()
        self.mode = MODE_SERVER if self.uri else MODE_LITE
        self.collection = collection or (
            LITE_COLLECTION if self.mode == MODE_LITE else SERVER_COLLECTION_PREFIX + uuid.uuid4().hex
        )
        self.index_type = INDEX_FLAT
        self.nlist: int | None = None
        self.nprobe: int | None = None
        self._rows = RowStore(dim)  # the collection's vectors by id (module docstring)
        self.scalar_fields: dict[str, str] = {}  # typed scalar columns: name → Milvus type (see _column_type)
        self._workdir: Path | None = None
        self._db_file: Path | None = None
        self._client: Any = None  # a pymilvus.MilvusClient (untyped)
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if self.mode == MODE_LITE:
            self._workdir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
            self._db_file = self._workdir / LITE_DB_NAME
        self._connect()

    # -- connection -------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        pymilvus = pymilvus_module()
        # An alias of its own: pymilvus shares one connection per URI, and closing one client would cut the others.
        self._client = pymilvus.MilvusClient(
            str(self._db_file) if self.mode == MODE_LITE else self.uri, alias=f"{CONNECTION_PREFIX}{uuid.uuid4().hex}"
        )
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(self, release_lite, self._client, self._db_file, self._workdir)

    def close(self) -> None:
        """Stop using the collection: an embedded engine stops and its private copy is removed."""
        if self._finalizer is not None:
            self._finalizer()
        elif self._workdir is not None:  # never connected (e.g. a damaged file failed to open)
            release_lite(self._client, self._db_file, self._workdir)

    # -- building ---------------------------------------------------------------------------------------------
    def _choose_index(self, count: int) -> dict[str, Any]:
        """The index parameters for a collection of `count` vectors."""
        if self.kind == KIND_FLAT:
            self.index_type, self.nlist, self.nprobe = INDEX_FLAT, None, None
            return {}
        self.nlist = max(1, LISTS_PER_SQRT_N * int(math.sqrt(max(count, 1))))
        self.nprobe = min(self.nlist, max(MIN_NPROBE, int(self.nlist * NPROBE_SHARE)))
        if self.mode == MODE_LITE:
            self.index_type = INDEX_IVF_FLAT
            return {"nlist": self.nlist}
        self.index_type = INDEX_IVF_PQ
        m = self.dim // 2 if self.dim % 2 == 0 else self.dim  # 2 dims per sub-quantiser
        return {"nlist": self.nlist, "m": m, "nbits": PQ_BITS}

    def _create_collection(self, count: int, fields: Mapping[str, Sequence[Any]]) -> None:
        """A new collection (replacing one of the same name) with `fields` declared as typed scalar columns."""
        pymilvus = pymilvus_module()
        client = self._client
        if client.has_collection(self.collection):
            client.drop_collection(self.collection)
        self.scalar_fields = {}
        schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field(ID_FIELD, pymilvus.DataType.INT64, is_primary=True)
        schema.add_field(VECTOR_FIELD, pymilvus.DataType.FLOAT_VECTOR, dim=self.dim)
        for name, values in fields.items():
            column = _column_type(values)
            if column == TEXT:
                schema.add_field(name, pymilvus.DataType.INT64)
            elif column == TEXT_LIST:
                schema.add_field(
                    name, pymilvus.DataType.ARRAY, element_type=pymilvus.DataType.INT64, max_capacity=MAX_LIST_ITEMS
                )
            elif column:
                schema.add_field(name, getattr(pymilvus.DataType, column))
            if column:
                self.scalar_fields[name] = column
        params = client.prepare_index_params()
        index_params = self._choose_index(count)  # sets self.index_type
        params.add_index(field_name=VECTOR_FIELD, index_type=self.index_type, metric_type=METRIC, params=index_params)
        client.create_collection(self.collection, schema=schema, index_params=params, consistency_level="Strong")

    def index(self, ids: np.ndarray, vectors: np.ndarray, fields: Mapping[str, Sequence[Any]] | None = None) -> None:
        """Build fresh from `ids` and `vectors`, with optional scalar `fields` (name → one value per vector)."""
        ids, vectors = self._check(ids, vectors)
        self._create_collection(len(ids), fields or {})
        self._write(ids, vectors, fields, upsert=False)
        self._rows = RowStore.from_arrays(ids, vectors)
        self.built_at = now()

    def append(self, ids: np.ndarray, vectors: np.ndarray, fields: Mapping[str, Sequence[Any]] | None = None) -> None:
        """Add vectors (an id already present is replaced), with optional scalar `fields` as for `index`."""
        ids, vectors = self._check(ids, vectors)
        if not len(ids):
            return
        self._write(ids, vectors, fields, upsert=True)
        self._rows.upsert(ids, vectors)

    def _write(
        self, ids: np.ndarray, vectors: np.ndarray, fields: Mapping[str, Sequence[Any]] | None, upsert: bool
    ) -> None:
        columns = {name: [_plain(v) for v in values] for name, values in (fields or {}).items()}
        for name, values in columns.items():
            if name in (ID_FIELD, VECTOR_FIELD):
                raise ValueError(f"field name {name!r} is reserved")
            if len(values) != len(ids):
                raise ValueError(f"field {name!r} has {len(values)} values for {len(ids)} vectors")
        for name, column in self.scalar_fields.items():  # milvus-lite has no nullable fields: fill empty values
            if name not in columns:
                columns[name] = [EMPTY_VALUES[column]] * len(ids)
            elif column == TEXT:
                columns[name] = [_code(v) for v in columns[name]]
            elif column == TEXT_LIST:
                columns[name] = [[_code(item) for item in (v or ())] for v in columns[name]]
        step = max(1, min(INSERT_BATCH_ROWS, INSERT_BATCH_BYTES // (4 * self.dim)))
        write = self._client.upsert if upsert else self._client.insert
        for start in range(0, len(ids), step):
            stop = min(start + step, len(ids))
            rows = [
                {
                    ID_FIELD: int(ids[i]),
                    VECTOR_FIELD: vectors[i],
                    **{name: values[i] for name, values in columns.items()},
                }
                for i in range(start, stop)
            ]
            write(self.collection, rows)

    def delete(self, ids: np.ndarray) -> None:
        ids = np.unique(as_ids(ids))
        ids = ids[self._rows.contains(ids)]
        for chunk in _chunks(ids, ID_LIST_BATCH):
            self._client.delete(self.collection, ids=[int(i) for i in chunk])
        self._rows.delete(ids)

    def __len__(self) -> int:
        return len(self._rows)

    def mapped_files(self) -> list[Path]:
        return self._rows.mapped_files()

    def field_names(self) -> set[str]:
        return set(self.scalar_fields)  # dynamic fields may be missing on some vectors: not filterable reliably

    def coded_fields(self) -> set[str]:
        """The fields stored as text codes (matching.vectors.filters.text_code)."""
        return {name for name, column in self.scalar_fields.items() if column in CODED_COLUMNS}

    def ids(self) -> np.ndarray:
        return self._rows.ids()

    def vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._rows.get(as_ids(ids))

    # -- searching --------------------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None, where: str | FieldFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """As VectorIndex.search; `where` is a Milvus boolean expression over the scalar fields stored with each
        vector (e.g. "province == '山东省'") or a FieldFilter, combined with `allowed_ids` by "and". Allowed ids
        without `where` are scored exactly over the local rows: Milvus takes an id list as an expression it
        parses and checks row by row (2,954 ids: ~95 ms at 100k; 26k ids: ~1.8 s at 1M), a scan of the rows
        costs a few ms per 10k ids."""
        queries, k, scores, found = search_arrays(queries, self.dim, k)
        if isinstance(where, FieldFilter):
            where = milvus_expression(where, coded=self.coded_fields())
        limit = min(k, MAX_TOP_K, len(self._rows))
        if not limit or not len(queries):
            return scores, found
        filters = [f"({where})"] if where else []
        if allowed_ids is not None:
            allowed = unique_ids(allowed_ids)
            if not where:
                return self._rows.search_subset(queries, allowed, k)  # it drops the ids it does not hold
            allowed = allowed[self._rows.contains(allowed)]
            if not len(allowed):
                return scores, found
            filters.append(f"{ID_FIELD} in [{','.join(map(str, allowed.tolist()))}]")
        params: dict[str, Any] = {"metric_type": METRIC}
        if self.nprobe:
            params["params"] = {"nprobe": self.nprobe}
        expression = " and ".join(filters)
        for start in range(0, len(queries), SEARCH_BATCH):
            batch = queries[start : start + SEARCH_BATCH]
            call = SearchCall(self.collection, batch, limit, params, expression, VECTOR_FIELD, ID_FIELD)
            hits = search_hits(self._client, call)
            for row, (ids, hit_scores) in enumerate(hits, start):
                scores[row, : len(ids)] = hit_scores
                found[row, : len(ids)] = ids
        return scores, found

    # -- saving -----------------------------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        meta = {
            **self.metadata,
            "backend": self.backend,
            "kind": self.kind,
            "dim": self.dim,
            "count": len(self),
            "built_at": self.built_at,
            "mode": self.mode,
            "index_type": self.index_type,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "collection": self.collection,
            "scalar_fields": self.scalar_fields,
        }
        if self.mode == MODE_SERVER:
            meta["uri"] = public_uri(self.uri)
        return meta

    def save(self, path: Path) -> None:
        """Embedded: copy the engine's file to `path`; server: write where the collection is. The local rows and
        the metadata beside (the metadata last: a folder with it is complete)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._client.flush(self.collection)
        self._rows.save(path)
        if self.mode == MODE_LITE:
            self._snapshot(path)
        else:
            atomic_write_bytes(path, f"milvus {public_uri(self.uri)} {self.collection}\n".encode())
        write_meta(meta_path(path), self._meta())

    def _snapshot(self, path: Path) -> None:
        """Stop the embedded engine, copy its file to `path` (atomically), start it again."""
        assert self._finalizer is not None and self._db_file is not None
        self._finalizer.detach()
        release_lite(self._client, self._db_file, None)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            shutil.copyfile(self._db_file, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            self._connect()
            self._client.load_collection(self.collection)

    @classmethod
    def load(
        cls, path: Path, expected: Mapping[str, Any] | None = None, mmap_store: bool | None = None
    ) -> "MilvusIndex":
        """Read an index `save` wrote; its local rows memory-mapped unless `mmap_store` is False."""
        path = Path(path)
        meta = read_meta(meta_path(path))
        check_meta(meta, expected)
        if (
            not isinstance(meta.get("dim"), int)
            or meta.get("kind") not in (KIND_FLAT, KIND_IVFPQ)
            or meta.get("mode") not in (MODE_LITE, MODE_SERVER)
            or not meta.get("collection")
        ):
            raise IndexMismatchError(f"index metadata incomplete: {path}")
        if not path.is_file():
            raise IndexMismatchError(f"index file missing: {path}")
        pymilvus = pymilvus_module()
        index = cls.__new__(cls)
        VectorIndex.__init__(index, meta["dim"])
        index.kind, index.mode, index.collection = meta["kind"], meta["mode"], meta["collection"]
        index.index_type, index.nlist, index.nprobe = (
            meta.get("index_type", INDEX_FLAT),
            meta.get("nlist"),
            meta.get("nprobe"),
        )
        index._finalizer, index._workdir, index._db_file, index._client = None, None, None, None
        index.scalar_fields = dict(meta.get("scalar_fields") or {})
        if set(index.scalar_fields.values()) & set(TEXT_STORED_COLUMNS):
            raise IndexMismatchError(f"index stores text fields as text, not as codes: {path}")
        index._rows = RowStore.open(path, index.dim, mmap=mmap_store is not False)  # IndexMismatchError if missing
        try:
            if index.mode == MODE_LITE:
                index.uri = None
                index._workdir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
                index._db_file = index._workdir / LITE_DB_NAME
                shutil.copyfile(path, index._db_file)
            else:
                index.uri = server_uri() or meta.get("uri")
                if path.read_text(encoding="utf-8").split()[-1:] != [index.collection]:
                    raise IndexMismatchError(f"index file does not name collection {index.collection}: {path}")
            index._connect()
            if not index._client.has_collection(index.collection):
                raise IndexMismatchError(f"collection {index.collection!r} missing: {path}")
            index._client.load_collection(index.collection)
            stored = np.sort(np.fromiter(index._all_ids(), np.int64))
        except IndexMismatchError:
            index.close()
            raise
        except (pymilvus.MilvusException, OSError, UnicodeDecodeError, ValueError) as exc:
            index.close()
            raise IndexMismatchError(f"index unreadable: {path}: {exc}") from exc
        if len(stored) != meta.get("count"):
            index.close()
            raise IndexMismatchError(f"index holds {len(stored)} vectors, its metadata says {meta.get('count')}")
        if not np.array_equal(stored, index._rows.ids()):  # e.g. a server collection changed since the save
            index.close()
            raise IndexMismatchError(f"the local rows beside {path} are not the collection's vectors")
        index.built_at = meta.get("built_at", "")
        index.metadata = caller_metadata(meta, META_KEYS)
        return index

    def _all_ids(self) -> Iterator[int]:
        """Every id in the collection, page by page: the smallest ids above the last page's, as pymilvus's query
        iterator pages (Milvus returns a limited query's rows in id order). Not that iterator: on a collection with
        an ARRAY field (a firm's tags) it fails in pymilvus 2.5 with milvus-lite 2.5.1 ("Unsupported data type:
        0"), so a saved index with stored tags could not be loaded."""
        last: int | None = None
        while True:
            page = self._client.query(
                self.collection,
                filter="" if last is None else f"{ID_FIELD} > {last}",
                output_fields=[ID_FIELD],
                limit=QUERY_PAGE,
            )
            ids = [int(row[ID_FIELD]) for row in page]
            yield from ids
            if len(ids) < QUERY_PAGE:
                return
            last = max(ids)


def _column_type(values: Sequence[Any]) -> str | None:
    """The Milvus scalar type of a field whose values are all of one Python type (lists: of text), else None (kept
    dynamic)."""
    kinds = {type(_plain(v)) for v in values}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind is list:
        texts = all(isinstance(item, str) for v in values for item in _plain(v))
        return TEXT_LIST if texts else None
    return {bool: "BOOL", int: "INT64", float: "DOUBLE", str: TEXT}.get(kind)


def _code(value: Any) -> int:
    """The text code of a text column's value (an empty value, "" or None, is 0)."""
    return 0 if value in EMPTY else text_code(str(value))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, a tuple, set or array of values as a list of them (other values
    unchanged)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [_plain(v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else value)]
    return value


def _chunks(values: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """`values` in consecutive slices of at most `size`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
