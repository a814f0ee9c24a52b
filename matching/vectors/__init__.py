"""Approximate-nearest-neighbour vector indexes behind one interface (in the manner of txtai's ANN layer).

- matching.vectors.base: `VectorIndex`, the interface the engine uses (index, append, delete, search, ids, save,
  load, info);
- matching.vectors.faiss_index: the faiss backend ("faiss", default): exact flat or IVF-PQ with exact re-scoring;
- matching.vectors.numpy_index: an exact NumPy backend ("numpy") for small pools and tests;
- matching.vectors.milvus_index: the Milvus backend ("milvus"): embedded milvus-lite or a server by URI;
- matching.vectors.registry: backends by name (`register_backend`, `make_vector_index`, `load_vector_index`);
- matching.vectors.row_store: the memory-mapped float32 rows the IVF-PQ index re-scores against;
- matching.vectors.meta: the metadata JSON saved beside every index file and its checks;
- matching.vectors.filters: filters on fields stored with each vector (`FieldFilter`), as a Milvus expression or
  a mask over field columns (the id list other backends take).
"""

from matching.vectors.base import KIND_AUTO, KIND_FLAT, KIND_IVFPQ, VECTOR_KINDS, VectorIndex
from matching.vectors.faiss_index import (
    CANDIDATES_PER_HIT,
    DEFAULT_REFINE,
    FILTER_EXACT_MAX_ROWS,
    FILTER_EXACT_SHARE,
    MIN_CANDIDATES,
    REFINE_FP16,
    REFINE_FP32,
    REFINE_KINDS,
    REFINE_SQ8,
    SINGLE_THREAD_MAX_QUERIES,
    FaissIndex,
)
from matching.vectors.filters import Condition, FieldFilter, condition, milvus_expression, text_code
from matching.vectors.meta import (
    IndexMismatchError,
    atomic_write_bytes,
    check_meta,
    meta_path,
    mismatches,
    read_meta,
    write_meta,
)
from matching.vectors.milvus_connection import set_server_uri
from matching.vectors.milvus_index import MilvusIndex
from matching.vectors.numpy_index import NumpyIndex
from matching.vectors.registry import (
    DEFAULT_BACKEND,
    DEFAULT_EXACT_MAX,
    backend_names,
    backend_stores_fields,
    choose_kind,
    load_vector_index,
    make_vector_index,
    register_backend,
)
from matching.vectors.row_store import RowStore, inner_products

__all__ = [
    "CANDIDATES_PER_HIT",
    "DEFAULT_BACKEND",
    "DEFAULT_EXACT_MAX",
    "DEFAULT_REFINE",
    "FILTER_EXACT_MAX_ROWS",
    "FILTER_EXACT_SHARE",
    "KIND_AUTO",
    "KIND_FLAT",
    "KIND_IVFPQ",
    "MIN_CANDIDATES",
    "REFINE_FP16",
    "REFINE_FP32",
    "REFINE_KINDS",
    "REFINE_SQ8",
    "SINGLE_THREAD_MAX_QUERIES",
    "VECTOR_KINDS",
    "Condition",
    "FaissIndex",
    "FieldFilter",
    "IndexMismatchError",
    "condition",
    "milvus_expression",
    "text_code",
    "MilvusIndex",
    "NumpyIndex",
    "RowStore",
    "VectorIndex",
    "atomic_write_bytes",
    "backend_names",
    "backend_stores_fields",
    "check_meta",
    "choose_kind",
    "inner_products",
    "load_vector_index",
    "make_vector_index",
    "meta_path",
    "mismatches",
    "read_meta",
    "register_backend",
    "set_server_uri",
    "write_meta",
]
