"""The embedded catalog: one SQLite database in WAL mode, safe for several processes on one machine.

Invariants kept here (each write method is one IMMEDIATE transaction, so they hold after any crash):
- `files` has one row per live path; its `latest` is the largest live version id of that path.
- Every file's and every directory's parent directory has a row in `dirs` (the root '' is implied).
- A directory row that is not `explicit` exists only while something lives below it; the write
  that removes the last child removes it too (and so on upwards).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator
from typing import Any

from .catalog import Catalog, NewerExists, Usage, dir_move_changes_nothing
from .errors import (
    AlreadyExists,
    IsADirectory,
    NoSpace,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
    ReadOnly,
    StoreError,
    Unavailable,
    WouldBlock,
)
from .ids import MAX_NODE
from .paths import depth, split
from .records import DIR_MODE, Dir, Entry, Stat, Version
from .sqlite_connections import BUSY_TIMEOUT_MS, Connections
from .sqlite_repair import lines, repair, scan
from .sqlite_schema import SCHEMA, VERSION_COLUMNS, key_range, row_to_dir, row_to_version

#: Write transactions of this catalog between two WAL checkpoints. No connection checkpoints on its
#: own (wal_autocheckpoint=0): a checkpoint syncs the disk, and a `nowait` write must never wait for one.
CHECKPOINT_EVERY = 256
#: Rows per read of `iter_versions`.
PAGE = 1000


class SqliteCatalog(Catalog):
    """Catalog in `{folder}/catalog.sqlite`; one connection per thread; node leases by flock.

    Checkpoints are this class's job: every CHECKPOINT_EVERY-th write transaction (never a nowait one)
    and `close` run a passive one.
    """

    def __init__(self, folder: str) -> None:
        self._folder = folder
        self._db = os.path.join(folder, "catalog.sqlite")
        self._conns = Connections(self._db, ("synchronous=NORMAL", "wal_autocheckpoint=0"))
        self._node_fd: int | None = None
        self._writes = 0  # write transactions since this catalog's last checkpoint
        self._writes_lock = threading.Lock()
        try:
            self._conn().executescript(SCHEMA)
        except sqlite3.Error as e:  # e.g. another program's database, whose tables clash with ours
            self._conns.close()
            raise Unavailable(f"cannot open the catalog {self._db}: {e}") from e

    # -- connections and transactions -------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        try:
            return self._conns.get()
        except sqlite3.Error as e:
            raise Unavailable(f"cannot open the catalog {self._db}: {e}") from e

    class _Tx:
        """`with catalog._tx() as c:` one IMMEDIATE transaction, rolled back on any exception.

        A `nowait` one raises WouldBlock instead of waiting for another writer's lock or a checkpoint.
        """

        def __init__(self, catalog: SqliteCatalog, nowait: bool) -> None:
            self.catalog = catalog
            self.conn = catalog._conn()
            self.nowait = nowait

        def __enter__(self) -> sqlite3.Connection:
            conn = self.conn
            if not self.nowait:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as e:
                    raise self.catalog._refused(e) from e
                return conn
            if self.catalog._writes >= CHECKPOINT_EVERY:
                raise WouldBlock("a checkpoint of the catalog is due")
            conn.execute("PRAGMA busy_timeout=0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise WouldBlock(f"the catalog is locked by another writer ({e})") from e
            finally:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            return conn

        def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
            if exc is not None:
                if self.conn.in_transaction:  # SQLite may have rolled back already (a full disk, say)
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):  # the database refused the write: a StoreError, not a crash
                    raise self.catalog._refused(exc) from exc
                return
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as e:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise self.catalog._refused(e) from e
            with self.catalog._writes_lock:
                self.catalog._writes += 1
                due = not self.nowait and self.catalog._writes >= CHECKPOINT_EVERY
                if due:
                    self.catalog._writes = 0
            if due:
                self.catalog._checkpoint(self.conn)

    def _refused(self, e: sqlite3.Error) -> StoreError:
        """The error for a write the database refused (locked past the timeout, read-only, full, damaged):
        NoSpace for a full disk, ReadOnly for a read-only one, Unavailable (EIO) otherwise."""
        message = f"the catalog {self._db} refused the change, nothing was changed: {e}"
        code = getattr(e, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_FULL:
            return NoSpace(message)
        if code == sqlite3.SQLITE_READONLY:
            return ReadOnly(message)
        return Unavailable(message)

    def _tx(self, nowait: bool = False) -> SqliteCatalog._Tx:
        return SqliteCatalog._Tx(self, nowait)

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        """Copy the log into the database, as far as readers allow. It runs after a commit, which
        must not look failed if it fails: the next checkpoint covers the same pages."""
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass

    # -- node leases ---------------------------------------------------------------------

    def claim_node(self) -> int:
        """Hold an exclusive flock on `nodes/<n>.lock` for the life of this process (freed on exit/crash)."""
        if self._node_fd is not None:
            os.close(self._node_fd)
            self._node_fd = None
        lockdir = os.path.join(self._folder, "nodes")
        os.makedirs(lockdir, exist_ok=True)
        start = random.randrange(MAX_NODE + 1)
        for i in range(MAX_NODE + 1):
            node = (start + i) % (MAX_NODE + 1)
            fd = os.open(os.path.join(lockdir, f"{node}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._node_fd = fd
            return node
        raise Unavailable(f"all {MAX_NODE + 1} snowflake nodes of {self._folder} are in use")

    # -- reads -----------------------------------------------------------------------------

    def get_version(self, vid: int) -> Version | None:
        r = self._conn().execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE id=?", (vid,)).fetchone()
        return row_to_version(r) if r else None

    def latest(self, path: str) -> Version | None:
        r = self._conn().execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE id=(SELECT latest FROM files WHERE path=?)",
            (path,),
        ).fetchone()
        return row_to_version(r) if r else None

    def lookup(self, path: str) -> Version | Dir | None:
        if path == "":
            return self.get_dir(path)
        r = self._conn().execute(
            f"SELECT 0, {VERSION_COLUMNS} FROM versions WHERE id=(SELECT latest FROM files WHERE path=?1) "
            f"UNION ALL SELECT 1, path, mtime, mode, explicit{', NULL' * 11} FROM dirs WHERE path=?1",
            (path,),
        ).fetchone()
        if r is None:
            return None
        return row_to_dir(r[1:]) if r[0] else row_to_version(r[1:])

    def history(self, path: str) -> list[Version]:
        rows = self._conn().execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE path=? AND deleted_at IS NULL ORDER BY id",
            (path,),
        ).fetchall()
        return [row_to_version(r) for r in rows]

    def deleted_since(self, path: str, since: float) -> bool:
        r = self._conn().execute(
            "SELECT 1 FROM versions WHERE path=? AND deleted_at>=? LIMIT 1", (path, since)
        ).fetchone()
        return r is not None

    def get_dir(self, path: str) -> Dir | None:
        if path == "":
            return Dir(path="", mtime=os.stat(self._db).st_mtime, explicit=True)
        r = self._conn().execute("SELECT path, mtime, mode, explicit FROM dirs WHERE path=?", (path,)).fetchone()
        return row_to_dir(r) if r else None

    def listdir(self, path: str, after: str | None, limit: int) -> list[Entry]:
        dirs, files = self._children(
            "path, mtime, mode, explicit, name",
            "f.name, " + ", ".join("v." + c.strip() for c in VERSION_COLUMNS.split(",")), path, after, limit)
        entries = [Entry(name=r[4], dir=row_to_dir(r)) for r in dirs]
        entries += [Entry(name=r[0], version=row_to_version(r[1:])) for r in files]
        entries.sort(key=lambda e: e.name)
        return entries[:limit]

    def list_stats(self, path: str, after: str | None, limit: int) -> list[Stat]:
        dirs, files = self._children("name, 1, 0, mtime, mtime, mode",
                                     "f.name, 0, v.size, v.mtime, max(v.updated_at, v.mtime), v.mode",
                                     path, after, limit)
        rows = [Stat._make(r) for r in dirs]
        rows += map(Stat._make, files)
        if dirs:
            rows.sort(key=lambda r: r.name)
        return rows[:limit]

    def _children(self, dir_cols: str, file_cols: str, path: str, after: str | None,
                  limit: int) -> tuple[list[Any], list[Any]]:
        """Rows of up to `limit` subdirectories and files of `path` named after `after`, each by name."""
        conn = self._conn()
        lo = after if after is not None else ""
        op = ">" if after is not None else ">="
        dirs = conn.execute(
            f"SELECT {dir_cols} FROM dirs WHERE parent=? AND name {op} ? ORDER BY name LIMIT ?", (path, lo, limit)
        ).fetchall()
        files = conn.execute(
            f"SELECT {file_cols} FROM files f JOIN versions v ON v.id=f.latest WHERE f.parent=? AND f.name {op} ? "
            "ORDER BY f.name LIMIT ?",
            (path, lo, limit),
        ).fetchall()
        return dirs, files

    def iter_files(self, under: str) -> Iterator[Version]:
        lo, hi = key_range(under)
        cols = ", ".join("v." + c.strip() for c in VERSION_COLUMNS.split(","))
        cur = self._conn().execute(
            f"SELECT {cols} FROM files f JOIN versions v ON v.id=f.latest "
            "WHERE f.path >= ? AND f.path < ? ORDER BY f.path",
            (lo, hi),
        )
        for r in cur:
            yield row_to_version(r)

    # -- helpers used inside transactions ----------------------------------------------------

    @staticmethod
    def _kind(c: sqlite3.Connection, path: str) -> str | None:
        """'dir', 'file' or None for a path, read inside the current transaction."""
        if path == "":
            return "dir"
        if c.execute("SELECT 1 FROM dirs WHERE path=?", (path,)).fetchone():
            return "dir"
        if c.execute("SELECT 1 FROM files WHERE path=?", (path,)).fetchone():
            return "file"
        return None

    @classmethod
    def _ensure_parents(cls, c: sqlite3.Connection, path: str, now: float) -> None:
        """Create implied directories for every missing ancestor of `path`."""
        parent, _ = split(path)
        missing: list[str] = []
        while parent:
            kind = cls._kind(c, parent)
            if kind == "dir":
                break
            if kind == "file":
                raise NotADirectory(f"{parent!r} is a file, not a directory")
            missing.append(parent)
            parent = split(parent)[0]
        for d in reversed(missing):
            p, n = split(d)
            c.execute(
                "INSERT INTO dirs(path, parent, name, explicit, mtime, mode) VALUES (?,?,?,0,?,?)",
                (d, p, n, now, DIR_MODE),
            )
            cls._touch(c, p, now)

    @staticmethod
    def _touch(c: sqlite3.Connection, path: str, now: float) -> None:
        if path:
            c.execute("UPDATE dirs SET mtime=? WHERE path=?", (now, path))

    @staticmethod
    def _prune(c: sqlite3.Connection, path: str) -> None:
        """Remove implied directories from `path` upwards while they have no children."""
        while path:
            row = c.execute("SELECT explicit FROM dirs WHERE path=?", (path,)).fetchone()
            if row is None or row[0]:
                return
            if c.execute("SELECT 1 FROM files WHERE parent=? LIMIT 1", (path,)).fetchone():
                return
            if c.execute("SELECT 1 FROM dirs WHERE parent=? LIMIT 1", (path,)).fetchone():
                return
            c.execute("DELETE FROM dirs WHERE path=?", (path,))
            path = split(path)[0]

    @staticmethod
    def _insert(c: sqlite3.Connection, v: Version) -> None:
        c.execute(
            f"INSERT INTO versions({VERSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                v.id, v.path, v.size, v.sha256, v.content_type, v.description,
                json.dumps(list(v.tags)) if v.tags else "[]", json.dumps(v.metadata) if v.metadata else "{}",
                v.created_at, v.updated_at,
                v.mtime, v.mode, v.state, v.key, None,
            ),
        )

    @classmethod
    def _set_latest(cls, c: sqlite3.Connection, path: str, vid: int, now: float) -> None:
        parent, name = split(path)
        cur = c.execute("UPDATE files SET latest=? WHERE path=? AND latest<?", (vid, path, vid))
        if cur.rowcount == 0 and not c.execute("SELECT 1 FROM files WHERE path=?", (path,)).fetchone():
            c.execute("INSERT INTO files(path, parent, name, latest) VALUES (?,?,?,?)", (path, parent, name, vid))
            cls._touch(c, parent, now)

    @classmethod
    def _refresh_latest(cls, c: sqlite3.Connection, path: str, now: float) -> None:
        """Point `files` at the newest live version of `path`, or drop the row (and pruned parents)."""
        r = c.execute("SELECT max(id) FROM versions WHERE path=? AND deleted_at IS NULL", (path,)).fetchone()
        if r[0] is None:
            c.execute("DELETE FROM files WHERE path=?", (path,))
            parent = split(path)[0]
            cls._touch(c, parent, now)
            cls._prune(c, parent)
        else:
            c.execute("UPDATE files SET latest=? WHERE path=?", (r[0], path))

    # -- writes ---------------------------------------------------------------------------------

    def insert_version(self, v: Version, inherit: Collection[str] = (), nowait: bool = False,
                       newest: bool = True, share: bool = False) -> Version:
        parent, name = split(v.path)
        with self._tx(nowait) as c:
            latest, *prev, is_dir, has_parent = c.execute(  # one row: the file's newest version (or NULLs)
                "SELECT f.latest, v.mode, v.description, v.tags, v.metadata, "
                "EXISTS(SELECT 1 FROM dirs WHERE path=?1), ?2='' OR EXISTS(SELECT 1 FROM dirs WHERE path=?2) "
                "FROM (SELECT 1) LEFT JOIN files f ON f.path=?1 LEFT JOIN versions v ON v.id=f.latest",
                (v.path, parent),
            ).fetchone()
            if newest and latest is not None and latest >= v.id:
                raise NewerExists(latest)
            if latest is None:
                if is_dir:
                    raise IsADirectory(f"{v.path!r} is a directory")
                if not has_parent:
                    self._ensure_parents(c, v.path, v.created_at)
            elif inherit:
                old = {"mode": prev[0], "description": prev[1], "tags": tuple(json.loads(prev[2])),
                       "metadata": json.loads(prev[3])}
                v = dataclasses.replace(v, **{f: old[f] for f in inherit})
            if share:  # in the transaction: gc cannot take a blob a live version uses
                same = c.execute("SELECT key FROM versions WHERE sha256=? AND size=? AND deleted_at IS NULL "
                                 "LIMIT 1", (v.sha256, v.size)).fetchone()
                if same is not None:
                    v = dataclasses.replace(v, key=same[0])
            self._insert(c, v)
            if latest is None:
                c.execute("INSERT INTO files(path, parent, name, latest) VALUES (?,?,?,?)", (v.path, parent, name, v.id))
                self._touch(c, parent, v.created_at)
            else:
                c.execute("UPDATE files SET latest=? WHERE path=? AND latest<?", (v.id, v.path, v.id))
        return v

    def update_version(self, vid: int, fields: dict[str, Any], now: float) -> Version:
        allowed = {"description", "tags", "metadata", "mtime", "mode", "state"}
        sets, args = ["updated_at=?"], list[Any]([now])
        for k, val in fields.items():
            if k not in allowed:
                raise ValueError(f"cannot update {k!r}")
            sets.append(f"{k}=?")
            args.append(json.dumps(list(val)) if k == "tags" else json.dumps(val) if k == "metadata" else val)
        with self._tx() as c:
            cur = c.execute(f"UPDATE versions SET {', '.join(sets)} WHERE id=? AND deleted_at IS NULL", (*args, vid))
            if cur.rowcount == 0:
                raise NotFound(f"no version with id {vid}")
            r = c.execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE id=?", (vid,)).fetchone()
        return row_to_version(r)

    def set_dir_attrs(self, path: str, mtime: float | None, mode: int | None) -> None:
        if path == "":
            return
        with self._tx() as c:
            if mtime is not None:
                c.execute("UPDATE dirs SET mtime=? WHERE path=?", (mtime, path))
            if mode is not None:
                c.execute("UPDATE dirs SET mode=? WHERE path=?", (mode, path))

    def delete_path(self, path: str, now: float) -> None:
        with self._tx() as c:
            kind = self._kind(c, path)
            if kind == "dir":
                raise IsADirectory(f"{path!r} is a directory")
            if kind is None:
                raise NotFound(f"no file {path!r}")
            c.execute("UPDATE versions SET deleted_at=? WHERE path=? AND deleted_at IS NULL", (now, path))
            self._refresh_latest(c, path, now)

    def delete_version(self, vid: int, now: float) -> None:
        with self._tx() as c:
            r = c.execute("SELECT path FROM versions WHERE id=? AND deleted_at IS NULL", (vid,)).fetchone()
            if r is None:
                raise NotFound(f"no version with id {vid}")
            c.execute("UPDATE versions SET deleted_at=? WHERE id=?", (now, vid))
            self._refresh_latest(c, r[0], now)

    def mkdir(self, path: str, now: float, parents: bool, exist_ok: bool, mode: int = DIR_MODE) -> None:
        with self._tx() as c:
            kind = self._kind(c, path)
            if kind == "file":
                raise AlreadyExists(f"{path!r} exists and is a file")
            if kind == "dir":
                if not exist_ok:
                    raise AlreadyExists(f"directory {path!r} exists")
                c.execute("UPDATE dirs SET explicit=1 WHERE path=?", (path,))
                return
            parent, name = split(path)
            pkind = self._kind(c, parent)
            if pkind == "file":
                raise NotADirectory(f"{parent!r} is a file, not a directory")
            if pkind is None:
                if not parents:
                    raise NotFound(f"no directory {parent!r}")
                self._ensure_parents(c, path, now)
            c.execute(
                "INSERT INTO dirs(path, parent, name, explicit, mtime, mode) VALUES (?,?,?,1,?,?)",
                (path, parent, name, now, mode),
            )
            self._touch(c, parent, now)

    def rmdir(self, path: str) -> None:
        if path == "":
            raise NotPermitted("cannot remove the store root")
        with self._tx() as c:
            kind = self._kind(c, path)
            if kind is None:
                raise NotFound(f"no directory {path!r}")
            if kind == "file":
                raise NotADirectory(f"{path!r} is a file")
            if c.execute("SELECT 1 FROM files WHERE parent=? LIMIT 1", (path,)).fetchone() or c.execute(
                "SELECT 1 FROM dirs WHERE parent=? LIMIT 1", (path,)
            ).fetchone():
                raise NotEmpty(f"directory {path!r} is not empty")
            c.execute("DELETE FROM dirs WHERE path=?", (path,))
            parent = split(path)[0]
            self._touch(c, parent, time.time())
            self._prune(c, parent)

    def _check_dst_parent(self, c: sqlite3.Connection, dst: str) -> None:
        parent = split(dst)[0]
        kind = self._kind(c, parent)
        if kind is None:
            raise NotFound(f"no directory {parent!r}")
        if kind == "file":
            raise NotADirectory(f"{parent!r} is a file, not a directory")

    def rename_file(self, src: str, dst: str, new_id: int, now: float, replace: bool) -> None:
        with self._tx() as c:
            skind = self._kind(c, src)
            if skind is None:
                raise NotFound(f"no file {src!r}")
            if skind == "dir":
                raise IsADirectory(f"{src!r} is a directory")
            if src == dst:
                return
            self._check_dst_parent(c, dst)
            dkind = self._kind(c, dst)
            if dkind == "dir":
                raise IsADirectory(f"{dst!r} is a directory")
            if dkind == "file" and not replace:
                raise AlreadyExists(f"{dst!r} exists")
            if dkind == "file":
                r = c.execute(
                    f"SELECT {VERSION_COLUMNS} FROM versions WHERE id=(SELECT latest FROM files WHERE path=?)",
                    (src,),
                ).fetchone()
                head = row_to_version(r)
                moved = Version(**{**head.__dict__, "id": new_id, "path": dst, "created_at": now, "updated_at": now})
                self._insert(c, moved)
                self._set_latest(c, dst, new_id, now)
                c.execute("UPDATE versions SET deleted_at=? WHERE path=? AND deleted_at IS NULL", (now, src))
            else:
                dparent, dname = split(dst)
                c.execute("UPDATE versions SET path=? WHERE path=? AND deleted_at IS NULL", (dst, src))
                c.execute("UPDATE files SET path=?, parent=?, name=? WHERE path=?", (dst, dparent, dname, src))
                self._touch(c, dparent, now)
            sparent = split(src)[0]
            if c.execute("SELECT 1 FROM files WHERE path=?", (src,)).fetchone():
                c.execute("DELETE FROM files WHERE path=?", (src,))
            self._touch(c, sparent, now)
            self._prune(c, sparent)

    def rename_dir(self, src: str, dst: str, now: float, replace: bool) -> None:
        if dir_move_changes_nothing(src, dst):
            return
        with self._tx() as c:
            skind = self._kind(c, src)
            if skind is None:
                raise NotFound(f"no directory {src!r}")
            if skind == "file":
                raise NotADirectory(f"{src!r} is a file")
            self._check_dst_parent(c, dst)
            dkind = self._kind(c, dst)
            if dkind == "file":
                raise NotADirectory(f"{dst!r} is a file")
            if dkind == "dir":
                if not replace:
                    raise AlreadyExists(f"{dst!r} exists")
                if src.startswith(dst + "/"):
                    raise NotEmpty(f"directory {dst!r} is not empty")
                if c.execute("SELECT 1 FROM files WHERE parent=? LIMIT 1", (dst,)).fetchone() or c.execute(
                    "SELECT 1 FROM dirs WHERE parent=? LIMIT 1", (dst,)
                ).fetchone():
                    raise NotEmpty(f"directory {dst!r} is not empty")
                c.execute("DELETE FROM dirs WHERE path=?", (dst,))
            self._check_depths(c, src, dst)
            lo, hi = key_range(src)
            n = len(src) + 1
            dparent, dname = split(dst)
            c.execute(
                "UPDATE dirs SET path=?, parent=?, name=? WHERE path=?", (dst, dparent, dname, src)
            )
            c.execute(
                "UPDATE dirs SET path=? || substr(path, ?), parent=? || substr(parent, ?) "
                "WHERE path >= ? AND path < ?",
                (dst, n, dst, n, lo, hi),
            )
            c.execute(
                "UPDATE files SET path=? || substr(path, ?), parent=? || substr(parent, ?) "
                "WHERE path >= ? AND path < ?",
                (dst, n, dst, n, lo, hi),
            )
            c.execute(
                "UPDATE versions SET path=? || substr(path, ?) WHERE path >= ? AND path < ?",
                (dst, n, lo, hi),
            )
            sparent = split(src)[0]
            self._touch(c, sparent, now)
            self._touch(c, dparent, now)
            self._prune(c, sparent)

    @staticmethod
    def _check_depths(c: sqlite3.Connection, src: str, dst: str) -> None:
        """Files must stay inside an experiment (depth >= 4) after a move that makes paths shallower."""
        shift = depth(dst) - depth(src)
        if shift >= 0:
            return
        lo, hi = key_range(src)
        for (path,) in c.execute("SELECT path FROM files WHERE path >= ? AND path < ?", (lo, hi)):
            if depth(path) + shift < 4:
                raise NotPermitted(f"moving {src!r} to {dst!r} would put files outside an experiment")

    def iter_versions(self, under: str) -> Iterator[Version]:
        """Reads pages of PAGE rows, each its own read, so a long walk holds no snapshot open."""
        lo, hi = key_range(under)
        after: tuple[str, int] = (lo, -1)
        while True:
            rows = self._conn().execute(
                f"SELECT {VERSION_COLUMNS} FROM versions WHERE deleted_at IS NULL AND (path, id) > (?, ?) "
                "AND path < ? ORDER BY path, id LIMIT ?", (*after, hi, PAGE)).fetchall()
            yield from map(row_to_version, rows)
            if len(rows) < PAGE:
                return
            after = (rows[-1][1], rows[-1][0])

    def expire_versions(self, vids: list[int], now: float) -> list[Version]:
        with self._tx() as c:
            # files.latest is the path's newest live id: a version below it is never the newest
            done = [vid for vid in vids if c.execute(
                "UPDATE versions SET deleted_at=? WHERE id=? AND deleted_at IS NULL "
                "AND id < (SELECT latest FROM files WHERE files.path=versions.path)", (now, vid)).rowcount]
            rows = [c.execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE id=?", (vid,)).fetchone() for vid in done]
        return [row_to_version(r) for r in rows]

    def dead_keys(self) -> list[str]:
        rows = self._conn().execute(
            "SELECT key FROM versions GROUP BY key HAVING sum(deleted_at IS NULL)=0"
        ).fetchall()
        return [r[0] for r in rows]

    def forget_keys(self, keys: list[str]) -> None:
        with self._tx() as c:
            c.executemany("DELETE FROM versions WHERE key=? AND deleted_at IS NOT NULL", [(k,) for k in keys])

    def claim_blob(self, sha256: str, size: int) -> str | None:
        """None: this catalog shares blobs inside `insert_version(share=True)`, in its transaction."""
        return None

    def release_blob(self, key: str) -> None:
        """Nothing to release: `claim_blob` never claims."""

    def register_blob(self, v: Version) -> None:
        """Nothing to record: live versions' rows are what `insert_version(share=True)` searches."""

    def usage(self, under: str) -> Usage:
        where, args = ("", ()) if under == "" else ("AND (path=? OR path >= ? AND path < ?)", (under, *key_range(under)))
        c = self._conn()
        n, logical, blobs, stored = c.execute(
            "SELECT sum(n), coalesce(sum(total), 0), count(*), coalesce(sum(size), 0) FROM ("
            f"SELECT count(*) n, sum(size) total, max(size) size FROM versions WHERE deleted_at IS NULL {where} "
            "GROUP BY key)", args).fetchone()
        dead = 0 if under else c.execute(
            "SELECT coalesce(sum(size), 0) FROM (SELECT max(size) size FROM versions GROUP BY key "
            "HAVING sum(deleted_at IS NULL)=0)").fetchone()[0]
        return Usage(n or 0, logical, blobs, stored, dead)

    def close(self) -> None:
        self._conns.close(self._checkpoint if self._writes else None)
        self._writes = 0
        if self._node_fd is not None:
            os.close(self._node_fd)
            self._node_fd = None

    # -- fsck -------------------------------------------------------------------------------------

    def all_keys(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT DISTINCT key FROM versions")}

    def live_versions(self) -> Iterator[Version]:
        # one query, read whole: a cursor held open across the caller's work would pin the WAL
        rows = self._conn().execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE deleted_at IS NULL ORDER BY id")
        yield from map(row_to_version, rows.fetchall())

    def check(self) -> list[str]:
        """Broken invariants (the module docstring's), one line each; see sqlite_repair.py."""
        return lines(scan(self._conn()))

    def repair(self) -> int:
        return repair(self)
