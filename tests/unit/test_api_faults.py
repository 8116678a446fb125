"""Pure logic of the API under faults: the webhook sink's circuit, what /readyz shows of a
reason, the key gate's one-way open mode, the bounds on parameters."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from triage.api.auth import KeyGate
from triage.api.params import storable_text, storable_time
from triage.api.routers.health import ReadyChecks, public_reason
from triage.ingest.sink import Circuit


def test_the_circuit_refuses_at_once_while_open_and_lets_one_probe_through() -> None:
    circuit = Circuit(first_cooldown_s=1.0, max_cooldown_s=4.0)
    assert circuit.admit(0.0) is None
    assert circuit.failed(0.5, "KafkaTimeoutError") == 1.0
    assert circuit.admit(1.0) == pytest.approx(0.5)          # open: wait, no call made
    assert circuit.admit(1.5) is None                        # cool-down over: this call probes
    assert circuit.admit(1.6) == 1.0                         # one probe at a time
    assert circuit.failed(6.5, "still down") == 2.0          # the probe failed: a longer cool-down
    assert circuit.admit(8.0) == pytest.approx(0.5)
    assert circuit.admit(8.5) is None
    circuit.failed(9.0, "still down")
    assert circuit.admit(13.0) is None
    assert circuit.failed(14.0, "still down") == 4.0          # capped
    assert circuit.admit(18.0) is None
    circuit.succeeded()
    assert not circuit.is_open and circuit.admit(18.1) is None and circuit.admit(18.1) is None
    assert circuit.failed(20.0, "down again") == 1.0          # the back-off starts over


def test_late_failures_of_calls_admitted_before_the_circuit_opened_do_not_lengthen_it() -> None:
    circuit = Circuit(first_cooldown_s=1.0, max_cooldown_s=8.0)
    for _ in range(3):
        assert circuit.admit(0.0) is None                    # three calls in flight
    assert circuit.failed(5.0, "timeout") == 1.0
    assert circuit.failed(5.2, "timeout") == pytest.approx(1.0)   # still the first cool-down
    assert circuit.failed(5.3, "timeout") == pytest.approx(1.0)
    assert circuit.admit(6.0) is None


def test_a_probe_that_ends_without_a_verdict_frees_the_next_one() -> None:
    circuit = Circuit(first_cooldown_s=1.0)
    circuit.failed(0.0, "down")
    assert circuit.admit(1.0) is None
    circuit.released()                                       # e.g. its events were too large
    assert circuit.admit(1.1) is None


def test_public_reason_keeps_the_first_line_and_masks_credentials() -> None:
    reason = ('(psycopg.OperationalError) connection to server at "db.internal" (10.0.0.5), port 5432 failed: '
              'password authentication failed for user "triage"\n[SQL: SELECT 1]\n(Background on this error at: x)')
    shown = public_reason(reason)
    assert shown.startswith("(psycopg.OperationalError) connection to server at") and "SQL" not in shown
    assert public_reason("cannot reach postgresql+psycopg://triage:s3cret@db:5432/triage [SQL: SELECT 1]") \
        == "cannot reach postgresql+psycopg://***@db:5432/triage"
    assert "hunter2" not in public_reason("sasl password=hunter2 refused")
    assert public_reason("") == ""


class _Keys:
    def __init__(self) -> None:
        self.created = False
        self.asked = 0

    def any_created(self) -> bool:
        self.asked += 1
        return self.created


def test_open_mode_only_ends() -> None:
    keys = _Keys()
    gate = KeyGate(keys, open_mode=True)  # type: ignore[arg-type]
    assert gate.is_open() and gate.is_open()
    keys.created = True                                       # e.g. `triage keys create` elsewhere
    assert not gate.is_open()
    keys.created = False                                      # (rows are never deleted; even so)
    assert not gate.is_open()
    closed = KeyGate(keys, open_mode=False)  # type: ignore[arg-type]
    asked = keys.asked
    assert not closed.is_open() and keys.asked == asked       # closed never asks the store


def test_storable_values() -> None:
    assert storable_text("checkout é") == "checkout é"
    with pytest.raises(ValueError, match="NUL"):
        storable_text("a\x00b")
    with pytest.raises(ValueError, match="surrogate"):
        storable_text("\ud800")
    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    with pytest.raises(ValueError, match="out of range"):
        storable_time(late)
    assert storable_time(datetime(2026, 3, 11, 15, tzinfo=timezone(timedelta(hours=1)))) \
        == datetime(2026, 3, 11, 14, tzinfo=timezone.utc)


def test_a_hung_check_makes_readyz_wait_seconds_not_minutes_and_runs_once() -> None:
    release = threading.Event()
    calls = [0]

    def hung_broker() -> None:
        calls[0] += 1
        release.wait(60)

    def store() -> None:
        pass

    checks = ReadyChecks({"store": store, "broker": hung_broker}, timeout_s=0.2)
    for _ in range(3):
        results = checks.run()
        assert results["store"] is None
        assert isinstance(results["broker"], TimeoutError) and "0.2 s" in str(results["broker"])
    assert calls[0] == 1                # later calls waited on the run in flight
    release.set()
    for _ in range(50):                 # the hung run ends; the next call checks afresh
        if checks.run()["broker"] is None:
            break
    assert checks.run()["broker"] is None and calls[0] >= 2
