"""The stage clock and the bench's figures from it: CPU per event per stage, and the rest."""

from __future__ import annotations

import pytest

from triage.domain.stages import Stage, StageClock
from triage.evaluation.cpu import process_cpu_s, stage_figures


def _spin(seconds: float) -> None:
    import time
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_each_stage_gets_the_cpu_spent_between_two_reads() -> None:
    clock = StageClock()
    since = clock.now()
    _spin(0.02)
    since = clock.add(Stage.decode, since)
    _spin(0.04)
    clock.add(Stage.correlation, since)
    assert 0.02 <= clock.cpu[Stage.decode] < 0.035
    assert 0.04 <= clock.cpu[Stage.correlation] < 0.06
    assert clock.cpu[Stage.fetch] == 0.0
    clock.reset()
    assert sum(clock.cpu.values()) == sum(clock.wall.values()) == 0.0


def test_figures_per_event_and_the_rest_of_the_process() -> None:
    a, b = StageClock(), StageClock()
    a.cpu[Stage.fetch], a.cpu[Stage.decode] = 0.1, 0.2
    b.cpu[Stage.correlation], b.cpu[Stage.store_writes] = 0.3, 0.25
    figures = stage_figures([a, b], process_cpu=1.0, events=10_000)
    per = figures["stage_cpu_us_per_event"]
    assert per["fetch"] == 10.0 and per["decode"] == 20.0 and per["correlation"] == 30.0
    assert per["store_writes"] == 25.0 and per["dedup"] == 0.0
    assert per["other"] == pytest.approx(15.0)
    assert sum(per.values()) == pytest.approx(100.0)


def test_process_cpu_of_this_process_grows_and_of_no_process_is_zero() -> None:
    import os
    before = process_cpu_s(os.getpid())
    _spin(0.05)
    assert process_cpu_s(os.getpid()) > before
    assert process_cpu_s(2**22 + 12345) == 0.0
