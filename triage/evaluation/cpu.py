"""CPU time per process and per stage, for ``triage bench``.

The machine is shared and its speed varies by the hour: CPU time per event moves less
with the load around a run than events per second do, which waits for the CPU as well.
So the bench reports, over its timed part, the CPU of every process the events pass
through: the consuming process (and, inside it, per stage of the hot path:
``triage.domain.stages``), the embedded broker, and on PostgreSQL the server's backends
serving the run's connections."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from triage.domain.stages import Stage, StageClock

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS   # utime, stime: fields 14 and 15 of stat(5)


def peak_rss_of_mib(pid: int) -> float:
    """Peak resident memory of process ``pid`` (``VmHWM``), in MiB; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def total_cpu_s(pids: Iterable[int]) -> float:
    return sum(process_cpu_s(pid) for pid in pids)


def database_backends(engine: Any) -> list[int]:
    """The PostgreSQL server processes serving connections to this run's database (the
    pool's, the bench's own included): the server's CPU a run costs, without the other
    databases' of a shared server. Empty on SQLite (in process)."""
    if engine.dialect.name != "postgresql":
        return []
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
        return [int(r[0]) for r in rows]


def us_per_event(seconds: float, events: int) -> float:
    return round(seconds / events * 1e6, 1) if events else 0.0


def stage_figures(clocks: Iterable[StageClock], process_cpu: float, events: int) -> dict[str, Any]:
    """``stage_cpu_us_per_event``: CPU per event in each stage (``triage.domain.stages``),
    summed over ``clocks``, and ``other``: the rest of the process's CPU (the consumer's
    event-time release and offset commits, the Kafka client's network thread, the store's
    checkpoint thread, the bench's own timing). ``stage_wall_s``: wall seconds per stage."""
    cpu = dict.fromkeys(Stage, 0.0)
    wall = dict.fromkeys(Stage, 0.0)
    for clock in clocks:
        for stage in Stage:
            cpu[stage] += clock.cpu[stage]
            wall[stage] += clock.wall[stage]
    per_stage = {stage.value: us_per_event(cpu[stage], events) for stage in Stage}
    per_stage["other"] = us_per_event(max(0.0, process_cpu - sum(cpu.values())), events)
    return {"stage_cpu_us_per_event": per_stage,
            "stage_wall_s": {stage.value: round(wall[stage], 2) for stage in Stage}}
