"""The correlator process stores the batches it is sent in order, and refuses one sent
while the batch before it failed (``Skipped``): what lets the consumer send the next
batch before the answer for this one. A real child process, with a stand-in pipeline
that refuses events named "poison"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
import os
import signal
from typing import Any

import pytest

from tests.conftest import make_event
from triage.correlator_process import CorrelatorProcess, Skipped
from triage.domain.errors import RefusedEvents
from triage.domain.event import Event, ServiceEdge
from triage.domain.stages import StageClock
from triage.models.embedder import HashingEmbedder
from triage.settings import Settings
from triage.store.records import BatchResult


class _Pipeline:
    def __init__(self) -> None:
        self.stages = StageClock()
        self.embedder = HashingEmbedder()

    def __call__(self, events: Sequence[Event], edges: Sequence[ServiceEdge], prepared: Any = None) -> BatchResult:
        if any(e.id.startswith("poison") for e in events):
            raise RefusedEvents("a poison")
        return BatchResult(received=len(events), stored=len(events), suppressed=0, attached=0, opened=0, notified=0)


def stand_in(settings: Settings) -> tuple[_Pipeline, Callable[[], None]]:
    return _Pipeline(), lambda: None


@pytest.fixture
def child() -> Any:
    process = CorrelatorProcess(Settings(embedder="hashing"), stand_in)
    yield process
    process.close()


def batch(*ids: str) -> list[Event]:
    return [make_event(i, id=name) for i, name in enumerate(ids)]


def test_batches_sent_ahead_are_stored_in_order(child: CorrelatorProcess) -> None:
    first, second = child.submit(batch("a1", "a2"), []), child.submit(batch("b1"), [])
    assert child.result(first).stored == 2 and child.result(second).stored == 1


def test_a_batch_sent_while_the_one_before_failed_is_refused_then_taken_after_it(child: CorrelatorProcess) -> None:
    failing, following = child.submit(batch("poison-1"), []), child.submit(batch("c1"), [])
    with pytest.raises(RefusedEvents):
        child.result(failing)
    with pytest.raises(Skipped):
        child.result(following)
    # sent again after the failed one was dealt with: stored
    assert child(batch("c1"), []).stored == 1
    assert child.result(child.submit(batch("c2"), [])).stored == 1


def test_a_batch_sent_to_a_new_child_waits_for_those_sent_to_the_one_that_ended(child: CorrelatorProcess) -> None:
    lost = child.submit(batch("d1"), [])
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child._proc.join(10)   # (ended before the next batch is sent)
    following = child.submit(batch("d2"), [])   # to a new child
    with pytest.raises(Skipped):
        child.result(lost)
    with pytest.raises(Skipped):
        child.result(following)   # refused: d1 goes first
    assert child(batch("d1"), []).stored == 1 and child(batch("d2"), []).stored == 1
