"""The consumer in two processes: one fetches and decodes, the other correlates and stores.

With ``TRIAGE_CORRELATOR_PROCESS=true`` a consuming process (``serve``, ``consume``)
starts a child that holds the pipeline (the store's unit of work, the correlator, the
sentence model), and its own ``BatchConsumer`` hands every batch to that child instead of
running the pipeline itself:

    parent: Kafka fetch -> decode + validate (dead letters) -> event-time release
              -> pack batch k+1 (``triage.domain.wire``), send it (``submit``) --------+
              -> read batch k's answer (``result``); meanwhile fetch and decode       |
                 ahead (``fetch_ahead``) and prepare what was decoded (``prepare``)   |
              <- batch k's result, the exception it raised, or "skipped" <-------+   |
              -> commit batch k's offsets                                        |   v
    child:  batch k+1 follows the last batch stored here? unpack -> Pipeline
            (dedup, state, correlation, writes, commit) -> result; else "skipped"

What the parent's ``BatchConsumer`` sees is a ``Pipelined`` handler (``triage.ingest.kafka``):
called, it returns once the batch is committed and raises what the pipeline raised
(``RefusedEvents``, ``StoreUnavailable``, anything else); and it can be sent the next
batch before it has answered for this one. A batch names the batch it follows, and the
child stores it only if it stored that one: a batch sent while its predecessor failed
is refused (``Skipped``) and sent again after it. So the dead-letter search and the
retries of ``triage.ingest.kafka`` see batches in order, nothing is committed to Kafka
before the child's store commit, and a redelivered batch is skipped by id as before.

The child dies with its parent (``PR_SET_PDEATHSIG``): a parent killed with SIGKILL
takes the child with it, and the child's open transaction rolls back. A child that dies
alone makes the batch in hand fail as ``StoreUnavailable`` (retried, nothing
dead-lettered), and the next batch starts a new child. The child ignores SIGINT and
SIGTERM: its parent stops it, after the batch in hand, by closing the pipe.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import astuple, dataclass
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import numpy as np

from triage.domain.errors import StoreUnavailable
from triage.domain.event import Event, ServiceEdge
from triage.domain.stages import Stage, StageClock
from triage.correlation.identity import dedup_key
from triage.correlation.templating import premask
from triage.domain.wire import Prepared, pack_batch, unpack_batch
from triage.models.embedder import Embedder, make_embedder
from triage.store.bulk import document_json
from triage.services.pipeline import Pipeline
from triage.services.telemetry import Metrics
from triage.settings import Settings
from triage.store.records import BatchResult

log = logging.getLogger(__name__)

# events, the batch's receipt, the documents made for them -> by event id its bound row
EventRows = Callable[[Sequence[Event], datetime, dict[str, str]], dict[str, tuple[Any, ...]]]

_PR_SET_PDEATHSIG = 1
_READY_TIMEOUT_S = 600.0   # the child loads the sentence model and opens the store
_HANDED_MAX = 100_000      # texts remembered as handed over (the child's cache holds as many)
_AHEAD_MAX = 200_000       # events prepared ahead of their batch (four times the default max_pending)


class Made(NamedTuple):
    """What the correlating process needs from one event alone, made in the fetching one."""

    masked: str      # ``triage.correlation.templating.premask``
    document: str    # ``triage.store.bulk.document_json``
    key: str         # ``triage.correlation.identity.dedup_key``
    row: tuple[Any, ...] | None = None   # its ``events`` row, bound (``SqlStore.event_rows``)


def make(event: Event) -> Made:
    return Made(premask(event), document_json(event), dedup_key(event))


class Ahead:
    """Events prepared before their batch is released (``Made``, by event id): what the
    fetching process makes while the child stores the batch before, so that little more
    than packing is left between two batches. With ``event_rows``, each prepared event's
    row is bound too, received when it was prepared. An event is taken once; an event
    held here that never reaches a batch (its partition lost in a rebalance) is dropped
    when more than ``limit`` wait."""

    def __init__(self, event_rows: EventRows | None = None, limit: int = _AHEAD_MAX) -> None:
        self.event_rows = event_rows
        self.limit = limit
        self._made: dict[str, tuple[Event, Made]] = {}

    def __len__(self) -> int:
        return len(self._made)

    def prepare(self, events: Iterable[Event], *, skip: Container[str] = ()) -> None:
        """Make each of ``events`` but those whose id is in ``skip`` (taken already)."""
        made = self._made
        if len(made) > self.limit:
            made.clear()
        new = {e.id: (e, make(e)) for e in events if e.id not in made and e.id not in skip}
        if new and self.event_rows is not None:
            rows = self.event_rows([e for e, _ in new.values()], datetime.now(timezone.utc),
                                   {i: m.document for i, (_, m) in new.items()})
            new = {i: (e, m._replace(row=rows[i])) for i, (e, m) in new.items()}
        made.update(new)

    def take(self, event: Event) -> Made:
        """``event``'s ``Made``: the one prepared for this very event, else made now (an
        event decoded by the blocking poll, or another event under the same id)."""
        held = self._made.pop(event.id, None)
        return held[1] if held is not None and held[0] is event else make(event)


_HEADER = struct.Struct("<qq")   # the batch's number, and the number of the batch it follows
_NONE = -1                        # ... none: the child's first
_REFUSE = -2                      # ... one the child cannot have stored: refused


class Skipped(Exception):
    """The child did not store a batch: it was sent while the one before it was stored,
    and that one failed. Nothing of it is stored; it is to be sent again after that one."""


@dataclass(frozen=True)
class Ticket:
    """A batch sent to the child (``CorrelatorProcess.submit``), to ask its ``result`` with."""

    generation: int
    seq: int
    events: Sequence[Event]


class CorrelatorProcess:
    """The parent's side: a ``Handler`` (``triage.ingest.kafka``) that stores each batch
    in the child. ``meanwhile`` runs after a batch is sent and before its answer is read
    (the consumer's ``fetch_ahead``); ``stages`` sums the child's CPU per stage and the
    hand-over's."""

    def __init__(self, settings: Settings, build: Callable[[Settings], tuple[Pipeline, Callable[[], None]]],
                 metrics: Metrics | None = None, embedder: Embedder | None = None,
                 event_rows: EventRows | None = None) -> None:
        """``build`` makes the child's pipeline from the settings, and what closes it: a
        module-level function (the child imports it by name), ``triage.service``'s.
        ``embedder``: this process's one embedder (``Runtime.embedder``), else one is made.
        ``event_rows``: this process's ``SqlStore.event_rows`` (a store of the same
        database), to bind each event's ``events`` row here rather than in the child."""
        self.settings = settings
        self.build = build
        self.metrics = metrics
        self.stages = StageClock()
        self.meanwhile: Callable[[], None] | None = None
        self.event_rows = event_rows
        self._conn: Connection | None = None
        self._proc: Any = None
        # The embedder of masked texts: the child's model work for new templates is done
        # here, once per text this process has not handed over before.
        self._embedder = embedder if embedder is not None else make_embedder(settings.embedder)
        self._embedder.embed(["triage start-up"])
        self._handed: set[str] = set()
        self._ahead = Ahead(event_rows)
        # Batches sent, numbered: each names the one it follows, and the child refuses one
        # whose predecessor it did not store. A new child starts a new generation.
        self._generation = self._seq = 0
        self._last_sent = self._last_ok = _NONE
        self._outstanding = 0   # batches sent to this child, not answered yet
        self._batch_ids: Container[str] = ()   # the ids of the batch in the child
        self._start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        proc = context.Process(target=_serve, args=(self.settings, self.build, theirs, os.getpid()), daemon=True,
                               name="triage-correlator")
        proc.start()
        theirs.close()
        if not ours.poll(_READY_TIMEOUT_S):
            proc.kill()
            raise RuntimeError("the correlator process did not start")
        try:
            kind, detail = pickle.loads(ours.recv_bytes())
        except EOFError:
            proc.join(5)
            raise RuntimeError(f"the correlator process ended at start-up (exit code {proc.exitcode})") from None
        if kind != "ready":
            proc.join(5)
            raise detail
        self._conn, self._proc = ours, proc

    def __call__(self, events: Sequence[Event], edges: Sequence[ServiceEdge] = ()) -> BatchResult:
        return self.result(self.submit(events, edges))

    def submit(self, events: Sequence[Event], edges: Sequence[ServiceEdge] = ()) -> Ticket:
        """Send a batch to the child and return at once: the child stores the batches it is
        sent in order, and ``result`` answers for each, in the order sent. A batch sent
        while the one before it is stored is refused by the child if that one fails
        (``Skipped``), so no batch is stored past one that was not."""
        # Batches sent to a child that has ended, not answered yet, go again before this
        # one: the new child refuses it until then.
        refuse = False
        if self._proc is None or not self._proc.is_alive():
            refuse = self._outstanding > 0
            self._lost()
            self._start()
        assert self._conn is not None
        since = self.stages.now()
        # What the child would compute from each event alone is computed here, off the
        # correlating process (its dedup key, its stored document, its masked text), most
        # of it while the child stored the batch before (``prepare``).
        take = self._ahead.take
        made = {e.id: take(e) for e in events}
        self._batch_ids = made.keys()
        masked = {i: m.masked for i, m in made.items()}
        documents = {i: m.document for i, m in made.items()}
        keys = {i: m.key for i, m in made.items()}
        if self.event_rows is not None:
            # The batch's receipt, stamped where it was received (the store would stamp
            # it when the transaction opens): its decisions carry it, and so do the rows
            # of its events not prepared ahead (those carry the time they were).
            received_at = datetime.now(timezone.utc)
            rows = {i: m.row for i, m in made.items() if m.row is not None}
            if len(rows) < len(made):
                rows.update(self.event_rows([e for e in events if e.id not in rows], received_at, documents))
            prepared = Prepared(keys, {}, masked, self._vectors(masked.values()), rows, received_at)
        else:
            prepared = Prepared(keys, documents, masked, self._vectors(masked.values()))
        data = pack_batch(list(events), list(edges), prepared)
        self._seq += 1
        ticket = Ticket(self._generation, self._seq, events)
        self.stages.add(Stage.handoff, since)
        try:
            self._conn.send_bytes(_HEADER.pack(ticket.seq, _REFUSE if refuse else self._last_sent) + data)
        except (EOFError, OSError):
            pass   # the child is gone: ``result`` finds out and says so
        self._last_sent = ticket.seq
        self._outstanding += 1
        return ticket

    def result(self, ticket: Ticket) -> BatchResult:
        """The answer for a batch ``submit`` sent (in the order sent): its ``BatchResult``
        once the child has committed it, else what it raised, or ``Skipped``. Runs
        ``meanwhile`` first."""
        if ticket.generation != self._generation:
            raise Skipped("the correlator process that was sent this batch has ended")
        assert self._conn is not None
        try:
            if self.meanwhile is not None:
                self.meanwhile()
            reply = self._conn.recv_bytes()
        except (EOFError, OSError) as exc:
            self._lost()
            raise StoreUnavailable(f"the correlator process ended: {exc or type(exc).__name__}") from None
        kind, seq, payload, cpu, wall = pickle.loads(reply)
        assert seq == ticket.seq, f"answer for batch {seq}, expected {ticket.seq}"
        self._outstanding -= 1
        for stage, seconds in cpu.items():
            self.stages.cpu[Stage(stage)] += seconds
        for stage, seconds in wall.items():
            self.stages.wall[Stage(stage)] += seconds
        if kind != "ok":
            # The next batch goes after the last one stored; one sent since is refused.
            self._last_sent = self._last_ok
            raise payload if kind == "error" else Skipped(f"batch {seq} was sent after one that failed")
        self._last_ok = seq
        result = BatchResult(*payload)
        if self.metrics is not None:
            self.metrics.batch_stored(ticket.events, result)
        return result

    def prepare(self, events: Iterable[Event]) -> None:
        """Make what the child needs from each of ``events`` alone before their batch is
        released: run while the child stores the batch before (``meanwhile``), on what
        ``BatchConsumer.fetch_ahead`` decoded, so it overlaps the child's work instead of
        coming between two batches."""
        since = self.stages.now()
        self._ahead.prepare(events, skip=self._batch_ids)   # (decoded by the poll that released them)
        self.stages.add(Stage.handoff, since)

    def _vectors(self, texts: Iterable[str]) -> dict[str, bytes]:
        """The embeddings of the ``texts`` not handed over yet (as float32 bytes)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._handed]
        if not new:
            return {}
        if len(self._handed) > _HANDED_MAX:
            self._handed.clear()   # handed again at worst: the child keeps what it has
        self._handed.update(new)
        vectors = self._embedder.embed(new)
        return {text: vectors[i].tobytes() for i, text in enumerate(new)}

    def _lost(self) -> None:
        self._generation += 1
        self._last_sent = self._last_ok = _NONE
        self._outstanding = 0
        if self._proc is not None:
            log.warning("the correlator process (pid %s) ended, exit code %s; starting another",
                        self._proc.pid, self._proc.exitcode)
        self.close()
        self._handed.clear()   # a new child holds only what the store holds

    def close(self) -> None:
        """Close the pipe (the child stops after the batch in hand) and wait for it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(30)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
            self._proc = None


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:   # the parent died before the request was made
        os._exit(1)


def take_batch(data: bytes | memoryview, pipeline: Pipeline) -> tuple[list[Event], list[ServiceEdge], Prepared | None]:
    """A batch the fetching process packed, unpacked, the vectors it computed put in the
    pipeline's embedder cache: this side of the hand-over (``Stage.handoff``)."""
    stages, embedder = pipeline.stages, pipeline.embedder
    since = stages.now()
    events, edges, prepared = unpack_batch(data)
    if prepared is not None:
        for text, vector in prepared.vectors.items():
            if embedder.cached(text) is None:
                embedder.put(text, np.frombuffer(vector, dtype=np.float32))
    stages.add(Stage.handoff, since)
    return events, edges, prepared


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a ``RuntimeError`` naming it (some drivers'
    exceptions cannot be rebuilt from their arguments)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _serve(settings: Settings, build: Callable[[Settings], tuple[Pipeline, Callable[[], None]]],
           conn: Connection, parent: int) -> None:
    """The child: build the pipeline as a consuming process does, then store batches
    until the pipe closes."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        pipeline, close = build(settings)
    except BaseException as exc:  # noqa: BLE001 - told to the parent, which raises it
        conn.send_bytes(pickle.dumps(("failed", _portable(exc))))
        return
    conn.send_bytes(pickle.dumps(("ready", None)))
    stages, embedder = pipeline.stages, pipeline.embedder
    last_ok = _NONE   # the last batch stored
    try:
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                break
            stages.reset()
            seq, after = _HEADER.unpack_from(data)
            reply: tuple[Any, ...]
            if after != last_ok:
                # Sent while the batch it follows was stored here, and that one failed.
                conn.send_bytes(pickle.dumps(("skipped", seq, None, {}, {})))
                continue
            events, edges, prepared = take_batch(memoryview(data)[_HEADER.size:], pipeline)
            try:
                reply = ("ok", seq, astuple(pipeline(events, edges, prepared)))
                last_ok = seq
            except Exception as exc:  # noqa: BLE001 - the parent's consumer sorts it
                reply = ("error", seq, _portable(exc))
            cpu = {s.value: v for s, v in stages.cpu.items() if v}
            wall = {s.value: v for s, v in stages.wall.items() if v}
            conn.send_bytes(pickle.dumps((*reply, cpu, wall)))
    finally:
        close()

