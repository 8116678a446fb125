"""The incident-centroid index (faiss, and its numpy fallback) and the service graph."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from triage.models import index as index_module
from triage.models.index import CentroidIndex
from triage.models.topology import ServiceGraph

BACKENDS = [False] + ([True] if index_module.faiss is not None else [])


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)



@pytest.mark.skipif(index_module.faiss is None or (os.cpu_count() or 1) < 2 or not os.path.isdir("/proc/self/task"),
                    reason="needs faiss, two cores and Linux's /proc")
def test_a_search_from_a_new_thread_starts_no_openmp_workers() -> None:
    """The consumer searches from a thread of its own; an OpenMP worker started there
    spins beside it, a whole core at 1k events/s (docs/benchmarks.md, "Why the hot path
    is built as it is")."""
    ix = CentroidIndex(3)
    for i in range(50):
        ix.upsert(f"inc-{i}", unit(1, i, 0))
    before = set(os.listdir("/proc/self/task"))
    started: list[set[str]] = []

    def search() -> None:
        ix.within(unit(1, 0, 0), 0.2)
        ix.search(unit(1, 0, 0), 3)
        # Thread ids, not a count: threads of earlier tests may end meanwhile.
        started.append(set(os.listdir("/proc/self/task")) - before - {str(threading.get_native_id())})

    thread = threading.Thread(target=search)
    thread.start()
    thread.join()
    assert started == [set()]


@pytest.mark.parametrize("use_faiss", BACKENDS)
def test_search_upsert_remove(use_faiss: bool) -> None:
    ix = CentroidIndex(3, use_faiss=use_faiss)
    ix.upsert("inc-a", unit(1, 0, 0))
    ix.upsert("inc-b", unit(0, 1, 0))
    ix.upsert("inc-c", unit(1, 1, 0))
    assert [k for k, _ in ix.search(unit(1, 0.1, 0), 2)] == ["inc-a", "inc-c"]
    assert {k for k, _ in ix.within(unit(1, 0, 0), 0.5)} == {"inc-a", "inc-c"}
    version = ix.version
    ix.upsert("inc-a", unit(0, 0, 1))          # replaced in place
    assert ix.version > version and len(ix) == 3
    assert ix.search(unit(0, 0, 1), 1)[0][0] == "inc-a"
    ix.remove("inc-a")
    assert "inc-a" not in ix and [k for k, _ in ix.search(unit(0, 0, 1), 3)] != ["inc-a"]
    with pytest.raises(ValueError):
        ix.upsert("bad", np.ones(4, dtype=np.float32))


@pytest.mark.parametrize("use_faiss", BACKENDS)
def test_ties_are_broken_by_key_not_insertion(use_faiss: bool) -> None:
    ix = CentroidIndex(2, use_faiss=use_faiss)
    for key in ("inc-z", "inc-m", "inc-a"):
        ix.upsert(key, unit(1, 0))
    assert [k for k, _ in ix.search(unit(1, 0), 3)] == ["inc-a", "inc-m", "inc-z"]
    assert [k for k, _ in ix.within(unit(1, 0), 0.9)] == ["inc-a", "inc-m", "inc-z"]


def test_empty_index() -> None:
    ix = CentroidIndex(2)
    assert ix.search(unit(1, 0), 5) == [] and ix.within(unit(1, 0), 0.0) == []


def test_service_graph_learns_hops_and_round_trips() -> None:
    g = ServiceGraph()
    assert g.learn_call("frontend", "checkout", 1.0) and not g.learn_call("frontend", "checkout", 2.0)
    g.learn_call("checkout", "payments")
    g.learn_placement("payments", "node-1")
    assert g.distance("frontend", ["payments"], 2) == (2, "payments")
    assert g.distance("frontend", ["payments"], 1) is None
    assert g.proximity("host:node-1", ["payments"], hop_decay=0.5, max_hops=2) == 0.5
    assert g.proximity("payments", ["payments"], hop_decay=0.5, max_hops=2) == 1.0
    restored = ServiceGraph.from_snapshot(json.loads(json.dumps(g.snapshot())))
    assert restored.edges() == g.edges() and restored.version == g.version


def test_a_mention_is_an_edge_of_the_least_sure_source_and_keeps_its_direction() -> None:
    g = ServiceGraph()
    assert not g.learn_mention("cart", "redis", 1.0)        # redis is no node yet
    g.learn_placement("redis", "node-1", 1.0)
    assert g.learn_mention("cart", "redis", 2.0) and not g.learn_mention("cart", "redis", 3.0)
    assert not g.learn_mention("redis", "redis", 3.0)
    assert ("cart", "redis", "mentioned") in g.edges() and g.mentions == {("cart", "redis"): 3.0}
    g.learn_call("cart", "redis", 4.0)                      # a span is surer than a mention
    g.learn_mention("cart", "redis", 5.0)
    assert ("cart", "redis", "learned") in g.edges()
    restored = ServiceGraph.from_snapshot(json.loads(json.dumps(g.snapshot())))
    assert restored.mentions == g.mentions and restored.edges() == g.edges()


def test_the_graph_keeps_who_calls_whom_and_round_trips_it() -> None:
    g = ServiceGraph()
    g.learn_call("frontend", "checkout")
    g.learn_placement("redis", "node-1")
    g.learn_mention("cart", "redis")
    g.declare("checkout", "payments")
    g.declare("payments", "host:node-2")                    # a placement has no direction
    assert g.calls("frontend", "checkout") and not g.calls("checkout", "frontend")
    assert g.calls("cart", "redis") and g.calls("checkout", "payments") and not g.calls("payments", "host:node-2")
    assert g.adjacent("checkout", "frontend") and not g.adjacent("frontend", "payments")
    version = g.version
    assert g.learn_call("payments", "checkout") and g.version > version   # a new direction on a known edge
    assert not g.learn_call("payments", "checkout")
    state = json.loads(json.dumps(g.snapshot()))
    assert ServiceGraph.from_snapshot(state).callees == g.callees
    del state["calls"]                                      # a snapshot from before directions were kept
    assert ServiceGraph.from_snapshot(state).callees == {"cart": {"redis"}}
    assert ServiceGraph.from_snapshot(state).version == g.version


def test_a_record_names_a_service_as_a_whole_word() -> None:
    g = ServiceGraph()
    g.learn_placement("redis-cart", "node-1")
    g.learn_placement("cartservice", "node-2")
    assert g.services_named_in("dial tcp redis-cart:6379: connection refused") == ["redis-cart"]
    assert g.services_named_in("GET http://cartservice.boutique.svc:7070/cart (calling redis-cart)") == \
        ["cartservice", "redis-cart"]
    assert g.services_named_in("redis-carts and mycartservice are other words; node-1 is a host") == []


def test_declared_topology_from_files(tmp_path: Path) -> None:
    topo = tmp_path / "topology.json"
    topo.write_text(json.dumps({"nodes": [{"id": "n1", "type": "host"}], "edges": [
        {"from": "frontend", "to": "cart", "type": "calls"}, {"from": "cart", "to": "n1", "type": "runs_on"},
        {"from": "n1", "to": "zone-a", "type": "in_zone"}]}))
    g = ServiceGraph.from_topology(topo)
    assert g.edges() == [("cart", "frontend", "declared"), ("cart", "host:n1", "declared")]
    catalog = tmp_path / "services.yaml"
    catalog.write_text("services:\n  - service: checkout\n    depends_on: [payments, cart]\n")
    assert ServiceGraph.from_topology(catalog).neighbours("checkout") == {"payments", "cart"}
