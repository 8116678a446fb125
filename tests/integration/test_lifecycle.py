"""How `triage` processes end: a signal stops them and what they started; a process that
cannot do its work exits non-zero, so a supervisor's restart-on-failure acts; a periodic
job whose dependency fails keeps going."""

from __future__ import annotations

import os
import signal
import socket
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import EMBEDDER_KIND
from triage.broker import free_port, wait_for_port
from triage.services.families_job import FamiliesJob
from triage.domain.health import Health

pytestmark = pytest.mark.integration
EXE = shutil.which("triage", path=str(Path(sys.executable).parent)) or "triage"


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def running(pid: int) -> bool:
    """Alive and not a zombie (a child whose parent died is reaped by whoever adopts it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def nothing_listens(port: int) -> bool:
    """No process accepts connections on ``port``. A connection from an ephemeral port to
    itself (Linux's TCP self-connect, possible when ``port`` is in the ephemeral range and
    nothing listens) is not a listener."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return True
    with sock:
        return bool(sock.getsockname() == sock.getpeername())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_the_broker_command_takes_tansu_with_it(sig: signal.Signals, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([EXE, "broker", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=(tmp_path / "broker.log").open("wb"))
    tansu: list[int] = []
    try:
        wait_for_port("127.0.0.1", port, 30)
        tansu = children(proc.pid)
        assert len(tansu) == 1 and running(tansu[0])
        proc.send_signal(sig)
        code = proc.wait(30)
        # Asked to stop: a clean exit. Killed outright: the kernel ends Tansu (PR_SET_PDEATHSIG).
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0), (tmp_path / "broker.log").read_text()
        assert wait_gone(tansu[0]), f"Tansu ({tansu[0]}) outlived `triage broker` after {sig.name}"
        assert nothing_listens(port)
    finally:
        proc.kill()
        for pid in tansu:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_broker_command_exits_non_zero_when_tansu_dies(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([EXE, "broker", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert "Tansu listening on" in proc.stderr.readline()   # started: now it serves
        [tansu] = children(proc.pid)
        os.kill(tansu, signal.SIGKILL)
        assert proc.wait(30) != 0
    finally:
        proc.kill()


def test_an_api_that_cannot_listen_exits_non_zero_and_says_why(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([EXE, "api", "--port", str(port)], capture_output=True, text=True, timeout=120,
                                cwd=tmp_path, env={**os.environ, "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"})
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failing_fit_shows_the_families_job_failing_and_it_keeps_trying(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'no-such-dir' / 'triage.db'}"
    health = Health()
    stop = threading.Event()
    job = FamiliesJob(missing, 300, holder="replica-1", embedder=EMBEDDER_KIND, first_delay_s=0)
    thread = threading.Thread(target=job.run, args=(stop, health))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while health.is_ok("families") and time.monotonic() < deadline:
            time.sleep(0.1)
        [state] = health.states()
        # The child could not open the database: a dependency's failure, not a bug.
        assert not state.ok and state.reason.startswith("OperationalError: (sqlite3.OperationalError)"), state
        assert thread.is_alive()   # it waits for its next try
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
