"""The upload journal: versions committed on this machine whose bytes are not yet in S3 or whose record
is not yet in MongoDB. One SQLite database in the cache folder, shared by every process using it.

Crash points of a remote commit and what the next open does about each:
1. bytes complete in the cache (pinned), no journal row  -> an orphan cache file, evicted like any other;
2. journal row committed                                  -> the version exists on this machine; `close()`
   returns here. Any later crash: the row stays and an uploader finishes it;
3. object uploaded (a multipart upload may be half done)  -> uploaded again (unfinished multipart uploads
   of the key are aborted first, so none is left to cost storage);
4. record published to MongoDB, row not yet removed       -> published again: the catalog takes a
   version id it has as already done;
5. row removed                                            -> done; the cached copy becomes evictable.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from .errors import InvalidValue, Unavailable
from .records import Version
from .sqlite_connections import Connections
from .staging import alive

SCHEMA = """
-- One row per version committed here and not yet both uploaded and published. Inserted by a commit
-- (Store -> WriteBackCatalog), changed by metadata edits and renames of pending files, removed by the
-- uploader once the record is in MongoDB (or by a delete of the pending version).
CREATE TABLE IF NOT EXISTS pending (
    id           INTEGER PRIMARY KEY,  -- the version's snowflake id
    path         TEXT NOT NULL,        -- store path the version will be published at
    key          TEXT NOT NULL,        -- blob key of its bytes (a rename keeps it)
    size         INTEGER NOT NULL,     -- bytes
    record       TEXT NOT NULL,        -- the whole Version as JSON (what gets published)
    committed_at REAL NOT NULL,        -- when close() returned, epoch seconds
    uploaded     INTEGER NOT NULL DEFAULT 0,  -- 1 once the bytes are in S3 (the record may still wait)
    attempts     INTEGER NOT NULL DEFAULT 0,  -- failed upload/publish attempts so far
    last_error   TEXT,                 -- the last failure, for `mldashfs status`
    worker       TEXT                  -- 'pid:thread' of the uploader working on it, NULL when free
);
CREATE INDEX IF NOT EXISTS pending_path ON pending(path, id);
CREATE INDEX IF NOT EXISTS pending_key ON pending(key);

-- Recent errors of uploaders (kept short), for `mldashfs status`.
CREATE TABLE IF NOT EXISTS errors (
    at      REAL NOT NULL,
    message TEXT NOT NULL
);

-- Which store this cache folder serves (a folder serves one store only).
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

#: How many of the latest uploader errors are kept.
KEEP_ERRORS = 50


def to_json(v: Version) -> str:
    return json.dumps({**asdict(v), "tags": list(v.tags)})


def from_json(text: str) -> Version:
    d: dict[str, Any] = json.loads(text)
    return Version(**{**d, "tags": tuple(d["tags"])})


class Journal:
    """Pending versions of one cache folder (thread-safe; one connection per thread)."""

    def __init__(self, folder: str, store: str | None = None) -> None:
        """The journal of cache folder `folder`, which must serve `store` (None: any, to read it)."""
        self.file = os.path.join(folder, "journal.sqlite")
        # synchronous=NORMAL: a committed row survives a killed process (see docs/remote.md)
        self._conns = Connections(self.file, ("synchronous=NORMAL",))
        try:
            c = self._conn()
            c.executescript(SCHEMA)
            if store is not None:
                c.execute("INSERT OR IGNORE INTO meta(name, value) VALUES ('store', ?)", (store,))
            row = c.execute("SELECT value FROM meta WHERE name='store'").fetchone()
        except sqlite3.Error as e:
            raise Unavailable(f"cannot open the upload journal {self.file}: {e}") from e
        owner = row[0] if row else None
        if store is not None and owner != store:
            raise InvalidValue(f"the cache folder {folder} belongs to the store {owner}, not {store}: "
                               "give each store its own --cache-dir")

    def _conn(self) -> sqlite3.Connection:
        return self._conns.get()

    # -- versions --------------------------------------------------------------------------

    def add(self, v: Version) -> None:
        self._conn().execute(
            "INSERT INTO pending(id, path, key, size, record, committed_at) VALUES (?,?,?,?,?,?)",
            (v.id, v.path, v.key, v.size, to_json(v), time.time()),
        )

    def get(self, vid: int) -> Version | None:
        r = self._conn().execute("SELECT record FROM pending WHERE id=?", (vid,)).fetchone()
        return from_json(r[0]) if r else None

    def history(self, path: str) -> list[Version]:
        rows = self._conn().execute("SELECT record FROM pending WHERE path=? ORDER BY id", (path,)).fetchall()
        return [from_json(r[0]) for r in rows]

    def latest(self, path: str) -> Version | None:
        r = self._conn().execute(
            "SELECT record FROM pending WHERE path=? ORDER BY id DESC LIMIT 1", (path,)
        ).fetchone()
        return from_json(r[0]) if r else None

    def below(self, top: str) -> list[Version]:
        """The newest pending version of every path strictly below directory `top`, sorted by path."""
        lo, hi = (top + "/", top + "0") if top else ("", "\U0010ffff")
        rows = self._conn().execute(
            "SELECT record FROM pending p WHERE path >= ? AND path < ? AND id = "
            "(SELECT max(id) FROM pending q WHERE q.path = p.path) ORDER BY path",
            (lo, hi),
        ).fetchall()
        return [from_json(r[0]) for r in rows]

    def any_below(self, top: str) -> bool:
        lo, hi = (top + "/", top + "0") if top else ("", "\U0010ffff")
        return self._conn().execute(
            "SELECT 1 FROM pending WHERE path >= ? AND path < ? LIMIT 1", (lo, hi)
        ).fetchone() is not None

    def replace(self, v: Version) -> bool:
        """Store a changed record of a pending version (metadata edit, rename); False if it is gone."""
        cur = self._conn().execute("UPDATE pending SET path=?, record=? WHERE id=?", (v.path, to_json(v), v.id))
        return cur.rowcount == 1

    def move(self, old: Version, new: Version) -> bool:
        """Give a pending version a new id and path (a rename onto an existing file); False if gone.
        An uploader holding it keeps it (it releases the key when it finds the old id gone), so no
        second uploader publishes the key while the first may still act on it."""
        cur = self._conn().execute("UPDATE pending SET id=?, path=?, record=? WHERE id=?",
                                   (new.id, new.path, to_json(new), old.id))
        return cur.rowcount == 1

    def remove(self, vids: Iterable[int]) -> None:
        self._conn().executemany("DELETE FROM pending WHERE id=?", [(v,) for v in vids])

    # -- the uploaders' side ---------------------------------------------------------------------

    def claim(self, worker: str, not_before: dict[int, float]) -> Version | None:
        """The oldest pending version no live process holds and not due later (`not_before`: id ->
        monotonic time), now held by `worker` ('pid:thread')."""
        c = self._conn()
        now = time.monotonic()
        c.execute("BEGIN IMMEDIATE")
        try:
            chosen = None
            rows = c.execute("SELECT id, worker FROM pending ORDER BY id")  # read lazily: the oldest
            for vid, holder in rows:  # rows are usually free, so a long journal is not read whole
                if not_before.get(vid, 0.0) > now:
                    continue
                if holder is None or not alive(int(holder.split(":", 1)[0])):
                    chosen = vid
                    break
            rows.close()
            record = None
            if chosen is not None:
                c.execute("UPDATE pending SET worker=? WHERE id=?", (worker, chosen))
                record = c.execute("SELECT record FROM pending WHERE id=?", (chosen,)).fetchone()[0]
            c.execute("COMMIT")
            return from_json(record) if record is not None else None
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def release_key(self, key: str, worker: str) -> None:
        """Free the rows of `key` that `worker` holds (a version renamed while it was being uploaded)."""
        self._conn().execute("UPDATE pending SET worker=NULL WHERE key=? AND worker=?", (key, worker))

    def mark_uploaded(self, vid: int) -> None:
        self._conn().execute("UPDATE pending SET uploaded=1 WHERE id=?", (vid,))

    def is_uploaded(self, vid: int) -> bool:
        r = self._conn().execute("SELECT uploaded FROM pending WHERE id=?", (vid,)).fetchone()
        return bool(r and r[0])

    def release(self, vid: int, error: str | None) -> None:
        """Give a version back after a failed attempt (it is tried again later)."""
        c = self._conn()
        c.execute("UPDATE pending SET worker=NULL, attempts=attempts+?, last_error=? WHERE id=?",
                  (1 if error else 0, error, vid))
        if error:
            c.execute("INSERT INTO errors(at, message) VALUES (?, ?)", (time.time(), error))
            c.execute("DELETE FROM errors WHERE rowid <= (SELECT max(rowid) FROM errors) - ?", (KEEP_ERRORS,))

    def counts(self) -> tuple[int, int, float | None]:
        """(versions, bytes, oldest commit time) still pending."""
        n, size, oldest = self._conn().execute(
            "SELECT count(*), coalesce(sum(size), 0), min(committed_at) FROM pending").fetchone()
        return n, size, oldest

    def errors(self, limit: int = 10) -> list[tuple[float, str]]:
        return self._conn().execute(
            "SELECT at, message FROM errors ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()

    def has_key(self, key: str) -> bool:
        """Whether a pending version still needs the blob `key` (a renamed one keeps its key)."""
        return self._conn().execute("SELECT 1 FROM pending WHERE key=? LIMIT 1", (key,)).fetchone() is not None

    def keys(self) -> set[str]:
        """Blob keys of every pending version (their cached bytes must stay)."""
        return {r[0] for r in self._conn().execute("SELECT key FROM pending")}

    # -- fsck -------------------------------------------------------------------------------------

    def stuck(self, attempts: int, older_than: float) -> list[tuple[Version, int, str | None]]:
        """`(version, failed attempts, last error)` of pending versions that failed at least `attempts`
        times or were committed more than `older_than` seconds ago."""
        rows = self._conn().execute(
            "SELECT record, attempts, last_error FROM pending WHERE attempts >= ? OR committed_at < ? ORDER BY id",
            (attempts, time.time() - older_than)).fetchall()
        return [(from_json(r[0]), r[1], r[2]) for r in rows]

    def retry(self, vid: int) -> None:
        """Forget a pending version's failures so uploaders take it again at once."""
        self._conn().execute("UPDATE pending SET attempts=0, last_error=NULL WHERE id=?", (vid,))

    def close(self) -> None:
        self._conns.close()
