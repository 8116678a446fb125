"""A nearest-neighbour index of incident centroids (inner product of normalised vectors).

The correlator asks it, per template, which open incidents talk about something
similar, instead of scanning every open incident. Backed by faiss (``IndexIDMap2`` over
``IndexFlatIP``: exact search, ids of our own, vectors replaceable in place); without
faiss installed a numpy matrix does the same, exactly and more slowly.

Keys are strings (incident ids); faiss wants int64, so the index keeps the mapping.
Results are ordered by score, then key, so that ties never depend on insertion order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

try:  # faiss is in the `ml` extra
    import faiss
except ImportError:  # pragma: no cover - exercised only without the extra
    faiss = None  # type: ignore[assignment]

_omp = threading.local()


def _one_openmp_thread() -> None:
    """One query at a time over a few hundred vectors: OpenMP's thread start-up costs
    ~25x the search itself (300 us against 12 us on two cores), and its idle worker
    spins, burning a whole core beside the consumer at 1k events/s. OpenMP's thread count
    is a per-thread setting (a new thread starts from the process default, the number of
    cores), so it is set in each thread that searches, not once at import."""
    if not getattr(_omp, "single", False):
        faiss.omp_set_num_threads(1)
        _omp.single = True

__all__ = ["CentroidIndex", "centroid_of"]


def centroid_of(vectors: np.ndarray) -> np.ndarray:
    """The unit-length mean of unit vectors (an incident's template centroid), rounded to
    5 decimals so that it round-trips through JSON and float32 storage unchanged."""
    mean = np.asarray(vectors).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return np.round(mean / (norm or 1.0), 5).astype(np.float32)


class CentroidIndex:
    def __init__(self, dim: int, *, use_faiss: bool | None = None) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self.dim = dim
        self.use_faiss = (faiss is not None) if use_faiss is None else use_faiss
        if self.use_faiss and faiss is None:
            raise RuntimeError("faiss is not installed")
        self._ids: dict[str, int] = {}
        self._keys: dict[int, str] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._next = 0
        self.version = 0  # bumped on every change, for callers that cache search results
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim)) if self.use_faiss else None
        self._matrix: np.ndarray | None = None   # numpy fallback, rebuilt lazily
        self._matrix_keys: list[str] = []

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def vector(self, key: str) -> np.ndarray | None:
        return self._vectors.get(key)

    def upsert(self, key: str, vector: np.ndarray) -> None:
        """Add ``key`` or replace its vector."""
        v = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if v.shape[1] != self.dim:
            raise ValueError(f"vector of dimension {v.shape[1]}, index has {self.dim}")
        if key in self._ids:
            self.remove(key)
        ident = self._next
        self._next += 1
        self._ids[key] = ident
        self._keys[ident] = key
        self._vectors[key] = v[0].copy()
        if self._index is not None:
            self._index.add_with_ids(v, np.array([ident], dtype=np.int64))
        self._matrix = None
        self.version += 1

    def remove(self, key: str) -> None:
        ident = self._ids.pop(key, None)
        if ident is None:
            return
        del self._keys[ident]
        del self._vectors[key]
        if self._index is not None:
            self._index.remove_ids(np.array([ident], dtype=np.int64))  # type: ignore[arg-type]
        self._matrix = None
        self.version += 1

    def within(self, vector: np.ndarray, radius: float) -> list[tuple[str, float]]:
        """Every key whose vector's inner product with ``vector`` is above ``radius``,
        best first (ties by key). A set, unlike top-k: the answer for one key never
        depends on which other keys happen to be indexed."""
        if not self._ids:
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if self._index is not None:
            _one_openmp_thread()
            _, scores, idents = self._index.range_search(q, float(radius))
            found = [(self._keys[int(i)], float(s)) for s, i in zip(scores, idents)]
        else:
            if self._matrix is None:
                self._matrix_keys = list(self._vectors)
                self._matrix = np.stack([self._vectors[key] for key in self._matrix_keys])
            sims = self._matrix @ q[0]
            found = [(self._matrix_keys[int(i)], float(sims[i])) for i in np.flatnonzero(sims > radius)]
        return sorted(found, key=lambda pair: (-round(pair[1], 5), pair[0]))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest keys by inner product, best first (ties by key)."""
        if not self._ids or k < 1:
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        k = min(k, len(self._ids))
        if self._index is not None:
            _one_openmp_thread()
            scores, idents = self._index.search(q, k)
            found = [(self._keys[int(i)], float(s)) for s, i in zip(scores[0], idents[0]) if i >= 0]
        else:
            if self._matrix is None:
                self._matrix_keys = list(self._vectors)
                self._matrix = np.stack([self._vectors[key] for key in self._matrix_keys])
            scores = self._matrix @ q[0]
            top = np.argsort(-scores, kind="stable")[:k]
            found = [(self._matrix_keys[int(i)], float(scores[i])) for i in top]
        return sorted(found, key=lambda pair: (-round(pair[1], 5), pair[0]))
