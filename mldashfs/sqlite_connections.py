"""SQLite connections in WAL mode, one per thread (and per process after a fork), closed together:
what the catalog and the upload journal share."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable

BUSY_TIMEOUT_MS = 60_000


def enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. While another process creates the same database, SQLite answers "database is
    locked" at once, without its busy handler; so wait and ask again, within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Connections:
    """This thread's connection to `file` (made on first use with `pragmas` after WAL is on)."""

    def __init__(self, file: str, pragmas: tuple[str, ...] = ()) -> None:
        self.file = file
        self._pragmas = pragmas
        self._local = threading.local()
        self.all: list[sqlite3.Connection] = []
        self.lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.file, isolation_level=None, check_same_thread=False, timeout=60)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            enable_wal(conn)
            for pragma in self._pragmas:
                conn.execute(f"PRAGMA {pragma}")
            self._local.conn, self._local.pid = conn, os.getpid()
            with self.lock:
                self.all.append(conn)
        return conn

    def close(self, first: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Close every connection (after `first(one of them)`, if given and any is open)."""
        with self.lock:
            if first is not None and self.all:
                first(self.all[0])
            for conn in self.all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self.all.clear()
        self._local = threading.local()
