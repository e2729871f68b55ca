"""The building blocks of the MongoDB catalog (mongo_catalog.py): the connection (errors, forks,
transactions), one-round-trip probes of a path, and the single-document steps that keep the catalog's
invariants without transactions: `bump` (latest forward), `reconcile` (files agree with versions),
`make_dirs` and `prune` (parents exist; implied directories go with their last child).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bson.int64 import Int64
from pymongo import MongoClient, UpdateOne, uri_parser
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from .errors import InvalidValue, NotADirectory, NotFound, Unavailable
from .mongo_moves import MustWait, moved, wait_for
from .mongo_schema import DIRS, FILES, INDEXES, VERSIONS, ancestors, dir_doc, root_doc
from .paths import split

T = TypeVar("T")
#: Seconds to find a server before a call fails with Unavailable (the URI's serverSelectionTimeoutMS wins).
TIMEOUT = 3.0
#: Seconds one network round trip may take once connected (the URI's socketTimeoutMS wins).
SOCKET_TIMEOUT = 300.0
#: Rounds of re-reading before a write gives up on a path other writers keep changing.
ROUNDS = 50


def remote(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn pymongo's errors into Unavailable naming the server."""

    @functools.wraps(fn)
    def wrapper(self: MongoSteps, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(self, *args, **kwargs)
        except PyMongoError as e:
            raise self.unavailable(e) from e

    return wrapper


def lookup_stage(coll: str, local: str, foreign: str, name: str) -> dict[str, Any]:
    return {"$lookup": {"from": coll, "localField": local, "foreignField": foreign, "as": name}}


def live(doc: dict[str, Any] | None) -> bool:
    return doc is not None and doc.get("deleted_at") is None


@dataclass
class Probe:
    """What one round trip found at a path: its file (and newest version), directory, ancestors and a version."""

    path: str
    file: dict[str, Any] | None
    dir: dict[str, Any] | None
    head: dict[str, Any] | None
    up_dirs: dict[str, dict[str, Any]]
    up_files: set[str]
    version: dict[str, Any] | None

    def moving(self) -> list[dict[str, Any]]:
        """Directory documents at or above the path that a folder rename is moving."""
        return [d for d in (self.dir, *self.up_dirs.values()) if d is not None and "moving" in d]

    def require_parent(self) -> None:
        """NotFound or NotADirectory unless the path's parent is a directory (what a move needs)."""
        parent = split(self.path)[0]
        if parent and parent not in self.up_dirs:
            if parent in self.up_files:
                raise NotADirectory(f"{parent!r} is a file, not a directory")
            raise NotFound(f"no directory {parent!r}")

    def missing_parents(self) -> tuple[list[str], str | None]:
        """Missing ancestors (nearest first) up to the nearest directory, and a file met on the way."""
        missing: list[str] = []
        for a in ancestors(self.path):
            if a in self.up_dirs:
                break
            if a in self.up_files:
                return missing, a
            missing.append(a)
        return missing, None


class _Bound:
    """A collection whose calls join the calling thread's transaction, if one is open."""

    __slots__ = ("_coll", "_local")

    def __init__(self, coll: Any, local: threading.local) -> None:
        self._coll = coll
        self._local = local

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._coll, name)
        session = getattr(self._local, "session", None)
        if session is None or not callable(attr):
            return attr
        return functools.partial(attr, session=session)


class MongoSteps:
    """A connection to one catalog database, and the steps the catalog's writes are made of."""

    def __init__(self, uri: str, database: str | None, timeout: float, transactions: bool | None,
                 default_database: str) -> None:
        self._uri = uri
        self._where, uri_db, self._options = self._parse(uri)
        self._dbname = database or uri_db or default_database
        self._timeout = timeout
        self._local = threading.local()
        self._pid = os.getpid()
        self._client: MongoClient[dict[str, Any]] = self._connect()
        self._pipeline_updates: bool | None = None
        try:
            self.transactions = self._open(transactions)
        except PyMongoError as e:
            self._client.close()
            raise self.unavailable(e) from e

    # -- connection ---------------------------------------------------------------------------

    @staticmethod
    def _parse(uri: str) -> tuple[str, str | None, dict[str, Any]]:
        try:
            parsed = uri_parser.parse_uri(uri)
        except (ConfigurationError, ValueError) as e:
            raise InvalidValue(f"bad MongoDB URI {uri!r}: {e}") from e
        where = ", ".join(f"{host}:{port}" for host, port in parsed["nodelist"])
        return where, parsed.get("database"), {k.lower(): v for k, v in parsed["options"].items()}

    def _connect(self) -> MongoClient[dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        for option, seconds in (("serverSelectionTimeoutMS", self._timeout), ("connectTimeoutMS", self._timeout),
                                ("socketTimeoutMS", SOCKET_TIMEOUT)):
            if option.lower() not in self._options:
                kwargs[option] = int(seconds * 1000)
        try:
            return MongoClient(self._uri, appname="mldashfs", **kwargs)
        except (ConfigurationError, ValueError) as e:
            raise InvalidValue(f"bad MongoDB URI {self._uri!r}: {e}") from e

    def _open(self, transactions: bool | None) -> bool:
        """Ask the server what it is (fails fast if unreachable), then make indexes and the root."""
        hello = self._client.admin.command("hello")
        replica_set = bool(hello.get("setName")) and hello.get("logicalSessionTimeoutMinutes") is not None
        db = self._database()
        for name, specs in INDEXES.items():
            for keys, options in specs:
                db[name].create_index(keys, **options)
        self._ensure_root()
        return replica_set if transactions is None else transactions

    def _database(self) -> Any:
        if os.getpid() != self._pid:  # a forked child must not share its parent's sockets
            self._pid = os.getpid()
            self._client = self._connect()
        return self._client[self._dbname]

    def coll(self, name: str) -> Any:
        return _Bound(self._database()[name], self._local)

    def unavailable(self, e: PyMongoError) -> Unavailable:
        text = str(e).split(", Timeout:")[0]  # the topology description that follows is pages long
        if isinstance(e, ConnectionFailure):
            return Unavailable(f"cannot reach MongoDB at {self._where}: {text}")
        return Unavailable(f"MongoDB at {self._where} refused a catalog request: {text}")

    def in_transaction(self) -> bool:
        return getattr(self._local, "session", None) is not None

    def atomic(self, fn: Callable[[], T]) -> T:
        """Run `fn` in a transaction where the server has them (else as it is; see the module doc).
        A transaction that must wait for a folder rename aborts, waits, and runs again."""
        if not self.transactions or self.in_transaction():
            return fn()
        while True:
            with self._client.start_session() as session:
                self._local.session = session
                try:
                    return session.with_transaction(lambda _s: fn())
                except MustWait as w:
                    waiting = w.docs
                finally:
                    self._local.session = None
            self.wait_moves(waiting)

    def pipeline_updates(self) -> bool:
        """Whether the server takes aggregation-pipeline updates with $concat/$substrCP (asked once)."""
        if self._pipeline_updates is None:
            try:
                rows = list(self.coll(DIRS).aggregate([
                    {"$match": {"path": ""}}, {"$limit": 1},
                    {"$project": {"_id": 0, "x": {"$concat": ["a", {"$substrCP": ["bc", 1, 5]}]}}}]))
                self._pipeline_updates = bool(rows) and rows[0].get("x") == "ac"
            except OperationFailure:
                self._pipeline_updates = False
        return self._pipeline_updates

    def no_pipeline_updates(self) -> None:
        self._pipeline_updates = False

    def _ensure_root(self) -> None:
        doc = root_doc(time.time())
        del doc["path"]
        try:
            self.coll(DIRS).update_one({"path": ""}, {"$setOnInsert": doc}, upsert=True)
        except DuplicateKeyError:
            pass  # another client made it at the same moment

    # -- probes -----------------------------------------------------------------------------------

    def probe(self, path: str, *, up: bool = False, head: bool = False, vid: int | None = None) -> Probe:
        """One aggregate from the root's document: the file and directory at `path`; with `up` every
        ancestor's directory and file; with `head` the file's newest version; with `vid` that version."""
        anc = ancestors(path) if up else []
        fields: dict[str, Any] = {"_id": 0, "p": {"$literal": path}}
        stages = [lookup_stage(FILES, "p", "path", "f"), lookup_stage(DIRS, "p", "path", "d")]
        if anc:
            fields["a"] = {"$literal": anc}
            stages += [lookup_stage(DIRS, "a", "path", "ad"), lookup_stage(FILES, "a", "path", "af")]
        if vid is not None:
            fields["y"] = {"$literal": Int64(vid)}
            stages.append(lookup_stage(VERSIONS, "y", "_id", "yv"))
        if head:
            stages += [{"$unwind": {"path": "$f", "preserveNullAndEmptyArrays": True}},
                       lookup_stage(VERSIONS, "f.latest", "_id", "v")]
        pipeline = [{"$match": {"path": ""}}, {"$limit": 1}, {"$project": fields}, *stages]
        rows = list(self.coll(DIRS).aggregate(pipeline))
        if not rows:  # the root's document is gone (a dropped collection): make it again
            self._ensure_root()
            rows = list(self.coll(DIRS).aggregate(pipeline))
        r = rows[0]
        f = r.get("f")
        return Probe(
            path=path, file=(f[0] if f else None) if isinstance(f, list) else f,
            dir=(r.get("d") or [None])[0], head=(r.get("v") or [None])[0],
            up_dirs={d["path"]: d for d in r.get("ad", ())}, up_files={d["path"] for d in r.get("af", ())},
            version=(r.get("yv") or [None])[0],
        )

    def settled_probe(self, path: str, **kw: Any) -> Probe:
        """`probe(up=True)` once no folder rename is moving the path or an ancestor."""
        for _ in range(ROUNDS):
            pr = self.probe(path, up=True, **kw)
            if not pr.moving():
                return pr
            self.wait_moves(pr.moving())
        raise Unavailable(f"{path!r} keeps being moved by folder renames")

    def wait_moves(self, docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Wait for the folder renames marked on `docs`; returns their (src, dst)."""
        if not docs:
            return []
        if self.in_transaction():
            raise MustWait(docs)
        out = []
        for d in docs:
            out.append((d["moving"]["src"], d["moving"]["dst"]))
            wait_for(self, d["path"])
        return out

    def newest_live(self, path: str, projection: dict[str, Any] | None = None) -> dict[str, Any] | None:
        return self.coll(VERSIONS).find_one({"path": path, "deleted_at": None}, projection, sort=[("_id", -1)])

    # -- write helpers ------------------------------------------------------------------------------

    def bulk(self, name: str, ops: list[Any], ordered: bool = True) -> None:
        """bulk_write, run again once if concurrent upserts of the same key collided (then they match)."""
        if not ops:
            return
        try:
            self.coll(name).bulk_write(ops, ordered=ordered)
        except BulkWriteError as e:
            if self.in_transaction() or any(err.get("code") != 11000 for err in e.details.get("writeErrors", ())):
                raise
            self.coll(name).bulk_write(ops, ordered=ordered)

    def make_dirs(self, missing: list[str], now: float) -> None:
        """Create implied directories (`missing` nearest first, as `Probe.missing_parents` gives them)
        top-down, and touch the existing directory above them; upserts, so a race is harmless."""
        if not missing:
            return
        ops: list[Any] = []
        for d in reversed(missing):
            parent, name = split(d)
            doc = dir_doc(d, parent, name, False, now)
            del doc["path"]
            ops.append(UpdateOne({"path": d}, {"$setOnInsert": doc}, upsert=True))
        above = split(missing[-1])[0]
        if above:
            ops.append(UpdateOne({"path": above}, {"$set": {"mtime": float(now)}}))
        self.bulk(DIRS, ops)

    def touch(self, path: str, now: float) -> None:
        if path:
            self.coll(DIRS).update_one({"path": path}, {"$set": {"mtime": float(now)}})

    def has_children(self, path: str) -> bool:
        return (self.coll(FILES).find_one({"parent": path}, {"_id": 1}) is not None
                or self.coll(DIRS).find_one({"parent": path}, {"_id": 1}) is not None)

    def prune(self, path: str) -> None:
        """Remove implied directories from `path` upwards while they have no children."""
        dirs = self.coll(DIRS)
        while path:
            d = dirs.find_one({"path": path})
            if d is None or d["explicit"] or "moving" in d or self.has_children(path):
                return
            if dirs.delete_one({"_id": d["_id"], "explicit": False, "moving": {"$exists": False}}).deleted_count == 0:
                return
            if self.has_children(path):  # a child arrived between the check and the delete: put it back
                dirs.update_one({"path": path}, {"$setOnInsert": {k: v for k, v in d.items() if k != "_id"}},
                                upsert=True)
                return
            path = split(path)[0]

    def bump(self, path: str, vid: int) -> bool:
        """Move the file's `latest` forward to `vid` (never back), creating its document; True if created."""
        parent, name = split(path)
        for _ in range(ROUNDS):
            try:
                r = self.coll(FILES).update_one(
                    {"path": path},
                    {"$max": {"latest": Int64(vid)}, "$inc": {"gen": 1}, "$setOnInsert": {"parent": parent, "name": name}},
                    upsert=True)
                return r.upserted_id is not None
            except DuplicateKeyError:
                if self.in_transaction():
                    raise
        raise Unavailable(f"cannot record the newest version of {path!r}: concurrent creates keep colliding")

    def reconcile(self, path: str, now: float) -> bool:
        """Make `files` agree with the live versions of `path` (how: mongo_catalog.py); True if a file is there.

        Compare-and-set on `gen` (every write of a file document increments it), so it never undoes a
        write it did not see; writes that only add versions move `latest` with $max and need no retry."""
        files = self.coll(FILES)
        for _ in range(ROUNDS):
            f = files.find_one({"path": path})
            top = self.newest_live(path, {"_id": 1})
            if top is None:
                if f is None:
                    return False
                if files.delete_one({"_id": f["_id"], "gen": f.get("gen")}).deleted_count:
                    parent = split(path)[0]
                    self.touch(parent, now)
                    self.prune(parent)
                    return False
            elif f is None:
                if self.bump(path, int(top["_id"])):
                    self.touch(split(path)[0], now)
            elif int(f["latest"]) == int(top["_id"]):
                return True
            elif files.update_one({"_id": f["_id"], "gen": f.get("gen")},
                                  {"$set": {"latest": Int64(top["_id"])}, "$inc": {"gen": 1}}).modified_count:
                return True
        raise Unavailable(f"{path!r} changes too fast to settle")

    def repair_path(self, path: str, now: float) -> None:
        """Reconcile `path` and make its missing parents (or, if no file is left there, prune the implied
        folders made for it). A folder rename met on the way is waited for,
        and then the path is repaired again, and under its new name too (its versions may have moved)."""
        todo = [path]
        for _ in range(ROUNDS):
            if not todo:
                return
            p = todo.pop()
            exists = self.reconcile(p, now)
            pr = self.probe(p, up=True)
            if pr.moving():
                todo += [p] + [moved(p, src, dst) for src, dst in self.wait_moves(pr.moving())]
                continue
            missing, blocker = pr.missing_parents()
            if exists and blocker is None:
                self.make_dirs(missing, now)
            elif not exists:  # its versions moved away (a folder rename overtook the insert): an
                self.prune(split(p)[0])  # implied folder made for it at the old place goes too
