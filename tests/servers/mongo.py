"""MongoDB for tests: the mongomock wire-protocol test server (scripts/mongo_test_server.py), or a real one.

`start_mongo_server()` runs the test server as a subprocess of this interpreter, waits for its
`READY <port>` line and returns a `MongoServer` (also a context manager). It is stopped by the pid
this module started: SIGTERM, then SIGKILL after a timeout. Its stderr goes to a log file whose
tail is shown when it fails to start.

Fixtures (use them from a test module or conftest with `mongo_uri = mongo.mongo_uri`, etc.):
- `mongo_uri` (session): `$MLDASH_TEST_MONGO_URI` if set (a real MongoDB), otherwise the URI of a
  test server started for the session and stopped at its end, even when tests fail.
- `mongo_db_name` (function): a fresh unique database name, dropped after the test, so tests
  sharing a real MongoDB do not collide.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

MONGO_URI_ENV = "MLDASH_TEST_MONGO_URI"
SERVER_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mongo_test_server.py"


@dataclass
class MongoServer:
    """A running test server: its process (stopped by pid), port and log file."""

    proc: subprocess.Popen[str]
    host: str
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mongodb://{host}:{self.port}/"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> int:
        """Stop the server (SIGTERM, then SIGKILL after timeout s); returns its exit status.

        The log file is removed if the server logged nothing; otherwise it is kept for reading.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.returncode == 0 and self.log.exists() and self.log.stat().st_size == 0:
            self.log.unlink()
        return self.proc.returncode

    def __enter__(self) -> MongoServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str | None:
    """The first stdout line of proc, or None if none came within timeout s."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def start_mongo_server(host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> MongoServer:
    """Start scripts/mongo_test_server.py and wait until it listens; raises if it does not."""
    fd, log_name = tempfile.mkstemp(prefix="mongo_test_server-", suffix=".log")
    log = Path(log_name)
    with os.fdopen(fd, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--host", host, "--port", str(port), "--exit-with-parent"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    started = time.monotonic()
    line = _first_line(proc, timeout) or ""
    server = MongoServer(proc, host, 0, log)
    if not line.startswith("READY "):
        server.stop()
        proc.stdout.close()  # type: ignore[union-attr]
        raise RuntimeError(
            f"mongo test server did not start within {timeout:.0f} s (after {time.monotonic() - started:.1f} s, "
            f"exit status {proc.returncode}, first line {line!r}); its log {log}:\n{server.log_text()[-4000:]}"
        )
    server.port = int(line.split()[1])
    proc.stdout.close()  # type: ignore[union-attr]  # READY is the only line the server prints there
    return server


def unique_db_name(prefix: str = "mldash_test") -> str:
    """A database name no other test uses (MongoDB allows at most 63 characters)."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """A MongoDB URI for the whole session: $MLDASH_TEST_MONGO_URI, else a test server of our own."""
    external = os.environ.get(MONGO_URI_ENV)
    if external:
        yield external
        return
    server = start_mongo_server()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def mongo_db_name(mongo_uri: str) -> Iterator[str]:
    """A fresh database name for one test; the database is dropped afterwards."""
    from pymongo import MongoClient

    name = unique_db_name()
    yield name
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=10_000) as client:
        client.drop_database(name)
