"""Where a process's CPU goes, per stage of the hot path: what ``triage bench`` reports.

Each stage adds the CPU time of the thread that ran it (``time.thread_time``) and its wall
time. Read once per batch or poll, never per event: a clock read costs about a microsecond
(thread CPU time is a system call), so per event it would be a measurable part of what it
measures. One ``StageClock`` is shared by the consumer (fetch, decode) and the pipeline
(the batch's opening, state, correlation, store writes) of one process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum


class Stage(str, Enum):
    """The stages of one event's way through a consuming process, in order."""

    fetch = "fetch"                # the Kafka client's poll: fetch responses parsed into records
    decode = "decode"              # JSON to a validated Event, the dead-letter topic for the rest
    handoff = "handoff"            # a batch packed for, and unpacked in, the correlating process
    dedup = "dedup"                # the batch opens: scopes locked, ids already stored dropped, signals read
    state = "state"                # the state slice and template vectors the batch can touch
    correlation = "correlation"    # templating, the duplicate check, candidates, scoring, decisions
    store_writes = "store_writes"  # rows built and written, the outbox, the commit


@dataclass
class StageClock:
    """CPU and wall seconds per stage, summed since it was made (or ``reset``)."""

    cpu: dict[Stage, float] = field(default_factory=lambda: dict.fromkeys(Stage, 0.0))
    wall: dict[Stage, float] = field(default_factory=lambda: dict.fromkeys(Stage, 0.0))

    @staticmethod
    def now() -> tuple[float, float]:
        """(thread CPU, wall) now: what ``add`` is given back."""
        return time.thread_time(), time.perf_counter()

    def add(self, stage: Stage, since: tuple[float, float]) -> tuple[float, float]:
        """Count the time from ``since`` to now to ``stage``; returns now, for the next stage."""
        now = time.thread_time(), time.perf_counter()
        self.cpu[stage] += now[0] - since[0]
        self.wall[stage] += now[1] - since[1]
        return now

    def reset(self) -> None:
        for stage in Stage:
            self.cpu[stage] = self.wall[stage] = 0.0
