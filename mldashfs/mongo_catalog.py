"""The remote catalog: MongoDB through pymongo, with the semantics of the SQLite catalog (the spec).

MongoDB without a replica set has no multi-document transactions. So every write here is a sequence
of single-document atomic operations, ordered so that a reader sees valid states only, and so that an
interruption leaves a state the next write of the same path, or `repair`, completes. Where the server
is a replica set (hello reports setName) the same sequences run inside a transaction (`atomic`, mongo_steps.py).
docs/remote-catalog.md tells users what is atomic and what a concurrent reader can see.

Invariants (they hold whenever no write is under way):
- `files` has one document per path with a live version; its `latest` is that path's largest live id.
- Every file's and every directory's parent directory has a document in `dirs` (the root '' has one).
- An implied (not explicit) directory exists only while something lives below it.
- No path is both a file and a directory.

How the writes keep them without transactions:
- insert_version: (1) make missing parent directories (upserts), (2) insert the version document,
  (3) move `files.latest` forward ($max, upsert; never backwards), (4) touch the parent of a new file,
  (5) read the version, the file and its ancestors again. If a delete, a folder rename or a
  file/directory conflict overlapped, it waits for the rename to end and reconciles the paths involved
  (or, for a conflict, removes its own version and raises).
- `reconcile(path)` makes `files` agree with `versions` for one path: it reads the newest live version
  and the file's document and writes the difference with a compare-and-set on `gen`, retrying when
  another write came in between. It is idempotent; every write that can leave `files` behind ends
  with it.
- Deletes hide first (move `latest` back, or remove the file's document), then mark the versions
  deleted, then reconcile and prune the empty implied parents.
- `prune` deletes an empty implied directory, looks for children again, and puts the directory back
  if one arrived in between. A writer that added a child and then finds a parent gone makes it again.
- Folder renames: mongo_moves.py. The steps named here (bump, reconcile, make_dirs, prune): mongo_steps.py.

Crash points: after (1) empty implied directories (pruned by the next delete there or by `repair`);
after (2) a live version that is not `latest` (the next write of the path or `repair` reconciles it;
a publisher re-inserting the same id finishes the job and gets AlreadyExists).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection, Iterator
from typing import Any, NoReturn

from bson.int64 import Int64
from pymongo import ReturnDocument
from pymongo.errors import (
    DuplicateKeyError,
    PyMongoError,
)

from . import mongo_shares as shares
from .catalog import Catalog, NewerExists, Usage
from .errors import (
    AlreadyExists,
    IsADirectory,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
    WouldBlock,
)
from .mongo_leases import LEASE_TTL, RENEW_EVERY, NodeLease
from .mongo_moves import FolderMove, moved
from .mongo_repair import repair, scan
from .mongo_schema import (
    BLOBS,
    DIRS,
    FILES,
    NODES,
    VERSIONS,
    below,
    dir_doc,
    doc_to_dir,
    doc_to_version,
    metadata_text,
    version_doc,
)
from .mongo_steps import ROUNDS, TIMEOUT, MongoSteps, Probe, live, lookup_stage, remote
from .paths import split
from .records import DIR_MODE, Dir, Entry, Stat, Version

DEFAULT_DATABASE = "mldash"
#: Documents per cursor batch in listings.
PAGE = 1000
UPDATABLE = frozenset({"description", "tags", "metadata", "mtime", "mode", "state"})


def _inherited(head: dict[str, Any], field: str) -> Any:
    """A field of version document `head` as `Version` holds it (for `insert_version(inherit=...)`)."""
    if field == "tags":
        return tuple(head.get("tags") or ())
    if field == "metadata":
        return json.loads(head.get("metadata") or "{}")
    if field == "mode":
        return int(head["mode"])
    return head.get(field)


class MongoCatalog(MongoSteps, Catalog):
    """Catalog in a MongoDB database (`versions`, `files`, `dirs`, `nodes`; see mongo_schema.py)."""

    def __init__(self, uri: str, database: str | None = None, *, timeout: float = TIMEOUT,
                 transactions: bool | None = None, lease_ttl: float = LEASE_TTL,
                 lease_renew: float = RENEW_EVERY) -> None:
        """Connect to `uri` and use `database` (default: the URI's path, else `mldash`); create the indexes
        and the root. `transactions` forces their use on or off (default: if the server is a replica set).
        Unavailable within about `timeout` seconds if the server cannot be reached."""
        super().__init__(uri, database, timeout, transactions, DEFAULT_DATABASE)
        self._lease = NodeLease(lambda: self._database()[NODES], self._where, lease_ttl, lease_renew)

    # -- node leases ---------------------------------------------------------------------------

    @remote
    def claim_node(self) -> int:
        return self._lease.claim()

    # -- reads -----------------------------------------------------------------------------------

    def _head(self, f: dict[str, Any]) -> Version | None:
        """The newest live version of file document `f` (joined as `v`), under the file's path. A head
        found deleted (a delete under way) is looked up afresh."""
        v = (f.get("v") or [None])[0]
        if not live(v):
            v = self.newest_live(f["path"])
        return doc_to_version(v, f["path"]) if v is not None else None

    @remote
    def get_version(self, vid: int) -> Version | None:
        if not 0 <= vid < 1 << 63:
            return None
        d = self.coll(VERSIONS).find_one({"_id": Int64(vid)})
        return doc_to_version(d) if d else None

    @remote
    def latest(self, path: str) -> Version | None:
        rows = list(self.coll(FILES).aggregate([{"$match": {"path": path}}, lookup_stage(VERSIONS, "latest", "_id", "v")]))
        return self._head(rows[0]) if rows else None

    @remote
    def lookup(self, path: str) -> Version | Dir | None:
        if path == "":
            return self.get_dir("")
        pr = self.probe(path, head=True)
        if pr.file is not None:
            v = self._head({**pr.file, "v": [pr.head] if pr.head else []})
            if v is not None:
                return v
        return doc_to_dir(pr.dir) if pr.dir is not None else None

    @remote
    def history(self, path: str) -> list[Version]:
        cur = self.coll(VERSIONS).find({"path": path, "deleted_at": None}).sort("_id", 1)
        return [doc_to_version(d) for d in cur]

    @remote
    def deleted_since(self, path: str, since: float) -> bool:
        return self.coll(VERSIONS).find_one({"path": path, "deleted_at": {"$gte": since}}, {"_id": 1}) is not None

    @remote
    def get_dir(self, path: str) -> Dir | None:
        d = self.coll(DIRS).find_one({"path": path})
        if d is None and path == "":
            self._ensure_root()
            d = self.coll(DIRS).find_one({"path": path})
        return doc_to_dir(d) if d else None

    @remote
    def listdir(self, path: str, after: str | None, limit: int) -> list[Entry]:
        dirs, files = self._children(path, after, limit, lean=False)
        entries = [Entry(name=d["name"], dir=doc_to_dir(d)) for d in dirs]
        for f in files:
            v = self._head(f)
            if v is not None:
                entries.append(Entry(name=f["name"], version=v))
        entries.sort(key=lambda e: e.name)
        return entries[:limit]

    @remote
    def list_stats(self, path: str, after: str | None, limit: int) -> list[Stat]:
        dirs, files = self._children(path, after, limit, lean=True)
        rows = [Stat(d["name"], True, 0, d["mtime"], d["mtime"], int(d["mode"])) for d in dirs]
        for f in files:
            v = (f.get("v") or [None])[0]
            if not live(v):
                v = self.newest_live(f["path"])
                if v is None:
                    continue
            rows.append(Stat(f["name"], False, int(v["size"]), v["mtime"], max(v["updated_at"], v["mtime"]),
                             int(v["mode"])))
        if dirs:
            rows.sort(key=lambda r: r.name)
        return rows[:limit]

    def _children(self, path: str, after: str | None, limit: int,
                  lean: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Up to `limit` subdirectory and file documents of `path` named after `after`, each by name;
        the files joined with their newest version as `v` (only the fields `ls -l` shows if `lean`)."""
        q: dict[str, Any] = {"parent": path}
        if after is not None:
            q["name"] = {"$gt": after}
        dirs = list(self.coll(DIRS).find(q, {"moving": 0}).sort("name", 1).limit(limit))
        pipeline: list[dict[str, Any]] = [{"$match": q}, {"$sort": {"name": 1}}, {"$limit": limit},
                                          lookup_stage(VERSIONS, "latest", "_id", "v")]
        if lean:
            pipeline.append({"$project": {"_id": 0, "path": 1, "name": 1, "v.size": 1, "v.mtime": 1,
                                          "v.updated_at": 1, "v.mode": 1, "v.deleted_at": 1}})
        return dirs, list(self.coll(FILES).aggregate(pipeline))

    def iter_files(self, under: str) -> Iterator[Version]:
        """Streams with a cursor in batches of PAGE (a folder may hold 100,000 files)."""
        match = {"path": below(under)} if under else {}
        pipeline = [{"$match": match}, {"$sort": {"path": 1}}, lookup_stage(VERSIONS, "latest", "_id", "v")]
        try:
            for f in self.coll(FILES).aggregate(pipeline, batchSize=PAGE):
                v = self._head(f)
                if v is not None:
                    yield v
        except PyMongoError as e:
            raise self.unavailable(e) from e

    # -- checks after writes ----------------------------------------------------------------------

    def _settle(self, path: str, vid: int, now: float, new_file: bool) -> None:
        """The check after a version was added at `path` (step 5 of insert_version in the module doc)."""
        pr = self.probe(path, up=True, vid=vid)
        if new_file and (pr.dir is not None or pr.up_files):
            self._undo(vid, path, now)
            if pr.dir is not None:
                raise IsADirectory(f"{path!r} is a directory")
            raise NotADirectory(f"{min(pr.up_files, key=len)!r} is a file, not a directory")
        y, f = pr.version, pr.file
        settled = (y is not None and y["path"] == path and f is not None and int(f["latest"]) >= vid
                   and (int(f["latest"]) != vid or live(y)) and not pr.missing_parents()[0])
        if settled and not pr.moving():
            return
        moves = self.wait_moves(pr.moving())
        paths = {path} | ({y["path"]} if y is not None else set())
        paths |= {moved(p, src, dst) for p in list(paths) for src, dst in moves}
        for p in sorted(paths):
            self.repair_path(p, now)

    def _undo(self, vid: int, path: str, now: float) -> None:
        """Take back a version that lost a file/directory race (its bytes go with the raised error)."""
        self.coll(VERSIONS).delete_one({"_id": Int64(vid)})
        if not self.reconcile(path, now):
            self.prune(split(path)[0])

    # -- writes ---------------------------------------------------------------------------------------

    @remote
    def insert_version(self, v: Version, inherit: Collection[str] = (), nowait: bool = False,
                       newest: bool = True, share: bool = False) -> Version:
        """`share` is left to the uploader, before it uploads anything (`claim_blob`)."""
        if nowait:
            raise WouldBlock("the MongoDB catalog waits for the network on every write")
        self._lease.check(v.id)
        return self.atomic(lambda: self._insert(v, inherit, newest))

    def _insert(self, v: Version, inherit: Collection[str], newest: bool) -> Version:
        pr = self.settled_probe(v.path, head=bool(inherit), vid=v.id)
        if pr.version is not None:  # the id is in already: a publisher's retry
            self._republished(v)
        if newest and pr.file is not None and int(pr.file["latest"]) >= v.id:
            raise NewerExists(int(pr.file["latest"]))
        new_file = pr.file is None
        if new_file:
            if pr.dir is not None:
                raise IsADirectory(f"{v.path!r} is a directory")
            missing, blocker = pr.missing_parents()
            if blocker is not None:
                raise NotADirectory(f"{blocker!r} is a file, not a directory")
            self.make_dirs(missing, v.created_at)
        elif inherit:
            head = pr.head if live(pr.head) else self.newest_live(v.path)
            if head is not None:
                v = dataclasses.replace(v, **{f: _inherited(head, f) for f in inherit})
        try:
            self.coll(VERSIONS).insert_one(version_doc(v))
        except DuplicateKeyError:
            self._republished(v)
        if self.bump(v.path, v.id):
            self.touch(split(v.path)[0], v.created_at)
        self._settle(v.path, v.id, v.created_at, new_file)
        return v

    def _republished(self, v: Version) -> NoReturn:
        """The id is taken: a publisher inserting again after a crash. Finish what the first insert may
        not have (move `latest`), then raise AlreadyExists."""
        if not self.in_transaction():
            old = self.coll(VERSIONS).find_one({"_id": Int64(v.id)}, {"path": 1, "deleted_at": 1})
            if live(old):
                assert old is not None
                self.bump(old["path"], v.id)
                self.repair_path(old["path"], v.created_at)
        raise AlreadyExists(f"version {v.id} is already in the catalog")

    @remote
    def update_version(self, vid: int, fields: dict[str, Any], now: float) -> Version:
        sets: dict[str, Any] = {"updated_at": float(now)}
        for k, val in fields.items():
            if k not in UPDATABLE:
                raise ValueError(f"cannot update {k!r}")
            sets[k] = list(val) if k == "tags" else metadata_text(val) if k == "metadata" else \
                float(val) if k == "mtime" else val
        d = self.coll(VERSIONS).find_one_and_update({"_id": Int64(vid), "deleted_at": None}, {"$set": sets},
                                                  return_document=ReturnDocument.AFTER)
        if d is None:
            raise NotFound(f"no version with id {vid}")
        return doc_to_version(d)

    @remote
    def set_dir_attrs(self, path: str, mtime: float | None, mode: int | None) -> None:
        if path == "":
            return
        sets: dict[str, Any] = {}
        if mtime is not None:
            sets["mtime"] = float(mtime)
        if mode is not None:
            sets["mode"] = mode
        if sets:
            self.coll(DIRS).update_one({"path": path}, {"$set": sets})

    @remote
    def delete_path(self, path: str, now: float) -> None:
        self.atomic(lambda: self._delete_path(path, now))

    def _delete_path(self, path: str, now: float) -> None:
        pr = self.settled_probe(path)
        if pr.dir is not None:
            raise IsADirectory(f"{path!r} is a directory")
        if pr.file is None:
            raise NotFound(f"no file {path!r}")
        upto = int(pr.file["latest"])  # versions committed after this delete began stay
        where = path
        for _ in range(ROUNDS):
            self._delete_upto(where, upto, now)
            self.wait_moves(self.probe(where, up=True).moving())
            y = self.coll(VERSIONS).find_one({"_id": Int64(upto)}, {"path": 1, "deleted_at": 1})
            if y is None or y["path"] == where:
                return
            where = y["path"]  # a folder rename moved the file meanwhile: delete it where it went

    def _delete_upto(self, path: str, upto: int, now: float) -> None:
        """Hide the file, mark its live versions up to `upto` deleted, reconcile, prune."""
        self.coll(FILES).delete_one({"path": path, "latest": {"$lte": Int64(upto)}})
        self.coll(VERSIONS).update_many({"path": path, "deleted_at": None, "_id": {"$lte": Int64(upto)}},
                                      {"$set": {"deleted_at": float(now)}})
        if not self.reconcile(path, now):
            parent = split(path)[0]
            self.touch(parent, now)
            self.prune(parent)

    @remote
    def delete_version(self, vid: int, now: float) -> None:
        self.atomic(lambda: self._delete_version(vid, now))

    def _delete_version(self, vid: int, now: float) -> None:
        versions, files = self.coll(VERSIONS), self.coll(FILES)
        d = versions.find_one({"_id": Int64(vid), "deleted_at": None}, {"path": 1})
        if d is None:
            raise NotFound(f"no version with id {vid}")
        path = d["path"]
        self.settled_probe(path)
        f = files.find_one({"path": path})
        if f is not None and int(f["latest"]) == vid:  # readers see the one before as newest from now on
            prev = versions.find_one({"path": path, "deleted_at": None, "_id": {"$lt": Int64(vid)}}, {"_id": 1},
                                     sort=[("_id", -1)])
            if prev is not None:
                files.update_one({"_id": f["_id"], "gen": f.get("gen")},
                                 {"$set": {"latest": prev["_id"]}, "$inc": {"gen": 1}})
            else:
                files.delete_one({"_id": f["_id"], "gen": f.get("gen")})
        marked = versions.update_one({"_id": Int64(vid), "deleted_at": None}, {"$set": {"deleted_at": float(now)}})
        for _ in range(ROUNDS):
            if not self.reconcile(path, now):
                self.touch(split(path)[0], now)
                self.prune(split(path)[0])
            y = versions.find_one({"_id": Int64(vid)}, {"path": 1})
            if y is None or y["path"] == path:
                break
            path = y["path"]  # a folder rename moved it meanwhile
            self.settled_probe(path)
        if marked.modified_count == 0:
            raise NotFound(f"no version with id {vid}")

    @remote
    def mkdir(self, path: str, now: float, parents: bool, exist_ok: bool, mode: int = DIR_MODE) -> None:
        self.atomic(lambda: self._mkdir(path, now, parents, exist_ok, mode))

    def _mkdir(self, path: str, now: float, parents: bool, exist_ok: bool, mode: int) -> None:
        pr = self.settled_probe(path)
        dirs = self.coll(DIRS)
        if pr.file is not None:
            raise AlreadyExists(f"{path!r} exists and is a file")
        if pr.dir is not None:
            if not exist_ok:
                raise AlreadyExists(f"directory {path!r} exists")
            dirs.update_one({"_id": pr.dir["_id"]}, {"$set": {"explicit": True}})
            return
        parent, name = split(path)
        missing, blocker = pr.missing_parents()
        if parent in pr.up_files:
            raise NotADirectory(f"{parent!r} is a file, not a directory")
        if missing and not parents:
            raise NotFound(f"no directory {parent!r}")
        if blocker is not None:
            raise NotADirectory(f"{blocker!r} is a file, not a directory")
        self.make_dirs(missing, now)
        try:
            dirs.insert_one(dir_doc(path, parent, name, True, now, mode))
        except DuplicateKeyError:
            if not exist_ok or self.in_transaction():
                raise AlreadyExists(f"directory {path!r} exists") from None
            dirs.update_one({"path": path}, {"$set": {"explicit": True}})
            return
        self.touch(parent, now)
        self._settle_dir(path, now, mode)

    def _settle_dir(self, path: str, now: float, mode: int) -> None:
        """The check after mkdir: undo on a file/directory conflict; follow a folder rename that overlapped."""
        pr = self.probe(path, up=True)
        if pr.file is not None or pr.up_files:
            self.coll(DIRS).delete_one({"path": path})
            self.prune(split(path)[0])
            if pr.file is not None:
                raise AlreadyExists(f"{path!r} exists and is a file")
            raise NotADirectory(f"{min(pr.up_files, key=len)!r} is a file, not a directory")
        moves = self.wait_moves(pr.moving())
        if not moves and not pr.missing_parents()[0]:
            return
        target = path
        for src, dst in moves:
            target = moved(target, src, dst)
        dirs = self.coll(DIRS)
        if dirs.find_one({"path": path}) is None and dirs.find_one({"path": target}) is None:
            parent, name = split(target)
            doc = dir_doc(target, parent, name, True, now, mode)
            del doc["path"]
            dirs.update_one({"path": target}, {"$setOnInsert": doc}, upsert=True)
        for p in {path, target}:
            missing, blocker = self.probe(p, up=True).missing_parents()
            if blocker is None and dirs.find_one({"path": p}) is not None:
                self.make_dirs(missing, now)

    @remote
    def rmdir(self, path: str) -> None:
        if path == "":
            raise NotPermitted("cannot remove the store root")
        self.atomic(lambda: self._rmdir(path))

    def _rmdir(self, path: str) -> None:
        pr = self.settled_probe(path)
        dirs = self.coll(DIRS)
        if pr.dir is None:
            if pr.file is not None:
                raise NotADirectory(f"{path!r} is a file")
            raise NotFound(f"no directory {path!r}")
        if self.has_children(path):
            raise NotEmpty(f"directory {path!r} is not empty")
        if dirs.delete_one({"_id": pr.dir["_id"], "moving": {"$exists": False}}).deleted_count == 0:
            raise NotFound(f"no directory {path!r}")
        if self.has_children(path):  # a child arrived in between: put the directory back
            dirs.update_one({"path": path}, {"$setOnInsert": {k: v for k, v in pr.dir.items() if k not in ("_id", "path")}},
                            upsert=True)
            raise NotEmpty(f"directory {path!r} is not empty")
        parent = split(path)[0]
        self.touch(parent, time.time())
        self.prune(parent)

    @remote
    def rename_file(self, src: str, dst: str, new_id: int, now: float, replace: bool) -> None:
        self._lease.check(new_id)
        self.atomic(lambda: self._rename_file(src, dst, new_id, now, replace))

    def _rename_file(self, src: str, dst: str, new_id: int, now: float, replace: bool) -> None:
        ps = self.settled_probe(src, head=True)
        if ps.file is None:
            if ps.dir is not None:
                raise IsADirectory(f"{src!r} is a directory")
            raise NotFound(f"no file {src!r}")
        if src == dst:
            return
        pd = self.settled_probe(dst)
        pd.require_parent()
        if pd.dir is not None:
            raise IsADirectory(f"{dst!r} is a directory")
        if pd.file is not None and not replace:
            raise AlreadyExists(f"{dst!r} exists")
        if pd.file is not None or not self._move_file(ps.file, src, dst, now):
            if not replace:
                raise AlreadyExists(f"{dst!r} exists")
            self._copy_head(ps, src, dst, new_id, now)
        sparent = split(src)[0]
        self.touch(sparent, now)
        self.prune(sparent)

    def _move_file(self, f: dict[str, Any], src: str, dst: str, now: float) -> bool:
        """Rename to a new name: the file's document first (readers see it move at once), then its live
        versions; False if `dst` was created in between."""
        dparent, dname = split(dst)
        try:
            r = self.coll(FILES).update_one({"_id": f["_id"], "path": src},
                                          {"$set": {"path": dst, "parent": dparent, "name": dname}, "$inc": {"gen": 1}})
        except DuplicateKeyError:
            if self.in_transaction():
                raise
            return False
        if r.matched_count == 0:
            raise NotFound(f"no file {src!r}")
        self.coll(VERSIONS).update_many({"path": src, "deleted_at": None}, {"$set": {"path": dst}})
        self.touch(dparent, now)
        self._after_rename(src, dst, now)
        return True

    def _copy_head(self, ps: Probe, src: str, dst: str, new_id: int, now: float) -> None:
        """Rename onto a file: dst gains src's newest version under `new_id` (same bytes); src goes."""
        head = ps.head if live(ps.head) else self.newest_live(src)
        if head is None:
            raise NotFound(f"no file {src!r}")
        copy = dataclasses.replace(doc_to_version(head), id=new_id, path=dst, created_at=now, updated_at=now)
        try:
            self.coll(VERSIONS).insert_one(version_doc(copy))
        except DuplicateKeyError:
            raise AlreadyExists(f"version {new_id} is already in the catalog") from None
        if self.bump(dst, new_id):
            self.touch(split(dst)[0], now)
        self.coll(FILES).delete_one({"path": src})
        self.coll(VERSIONS).update_many({"path": src, "deleted_at": None}, {"$set": {"deleted_at": float(now)}})
        self._after_rename(src, dst, now)

    def _after_rename(self, src: str, dst: str, now: float) -> None:
        """Reconcile both names of a file rename, after any folder rename that overlapped it."""
        moves = self.wait_moves(self.probe(src, up=True).moving() + self.probe(dst, up=True).moving())
        paths = {src, dst} | {moved(p, s, d) for p in (src, dst) for s, d in moves}
        for p in sorted(paths):
            self.repair_path(p, now)

    @remote
    def rename_dir(self, src: str, dst: str, now: float, replace: bool) -> None:
        FolderMove.rename(self, src, dst, now, replace)

    def iter_versions(self, under: str) -> Iterator[Version]:
        """Streams with a cursor in batches of PAGE, by the path_id index."""
        match = {"path": below(under) if under else {"$gt": ""}, "deleted_at": None}
        try:
            for d in self.coll(VERSIONS).find(match).sort([("path", 1), ("_id", 1)]).batch_size(PAGE):
                yield doc_to_version(d)
        except PyMongoError as e:
            raise self.unavailable(e) from e

    @remote
    def expire_versions(self, vids: list[int], now: float) -> list[Version]:
        out: list[Version] = []
        for vid in vids:
            v = self.atomic(lambda vid=vid: self._expire(vid, now))  # type: ignore[misc]
            if v is not None:
                out.append(v)
        return out

    def _expire(self, vid: int, now: float) -> Version | None:
        """Mark version `vid` deleted if a newer live version of its path exists. Without transactions the
        check runs again after the mark: if the newer one went meanwhile (a delete_version) while the
        file is still there, the mark is taken back and `files` reconciled, so the path keeps a newest
        version. With no file document left, the user deleted the file meanwhile and the mark stays
        (undoing it would bring a deleted file back). `vid` is never `files.latest` while marked, so
        readers see no change."""
        versions = self.coll(VERSIONS)
        d = versions.find_one({"_id": Int64(vid), "deleted_at": None})
        if d is None:
            return None

        def newer() -> bool:
            return versions.find_one({"path": d["path"], "deleted_at": None, "_id": {"$gt": Int64(vid)}},
                                     {"_id": 1}) is not None

        if not newer():
            return None
        if versions.update_one({"_id": Int64(vid), "deleted_at": None},
                               {"$set": {"deleted_at": float(now)}}).modified_count == 0:
            return None
        if not newer() and self.coll(FILES).find_one({"path": d["path"]}, {"_id": 1}) is not None:
            versions.update_one({"_id": Int64(vid), "deleted_at": float(now)}, {"$set": {"deleted_at": None}})
            self.reconcile(d["path"], now)
            return None
        return dataclasses.replace(doc_to_version(d), deleted=True)

    @remote
    def dead_keys(self) -> list[str]:
        versions = self.coll(VERSIONS)
        out: list[str] = []
        cur = versions.aggregate([{"$match": {"deleted_at": {"$ne": None}}}, {"$group": {"_id": "$key"}}],
                                 batchSize=PAGE)
        batch: list[str] = []
        for d in cur:
            batch.append(d["_id"])
            if len(batch) == PAGE:
                out += self._dead(self._unreferenced(batch))
                batch = []
        return out + self._dead(self._unreferenced(batch))

    def _dead(self, keys: list[str]) -> list[str]:
        """Of `keys` (no live version named them when asked), those whose blobs gc may delete: not
        claimed by a sharer, marked dying, and still named by no live version (mongo_shares.py)."""
        if not keys:
            return []
        dying = shares.mark_dying(self.coll(BLOBS), keys)
        dead = set(self._unreferenced(sorted(dying)))
        shares.keep(self.coll(BLOBS), sorted(dying - dead))
        return [k for k in keys if k in dead]

    def _unreferenced(self, keys: list[str]) -> list[str]:
        if not keys:
            return []
        live = set(self.coll(VERSIONS).distinct("key", {"key": {"$in": keys}, "deleted_at": None}))
        return [k for k in keys if k not in live]

    @remote
    def forget_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), PAGE):
            self.coll(VERSIONS).delete_many({"key": {"$in": keys[i : i + PAGE]}, "deleted_at": {"$ne": None}})
            shares.forget(self.coll(BLOBS), keys[i : i + PAGE])

    @remote
    def usage(self, under: str) -> Usage:
        match: dict[str, Any] = {"deleted_at": None}
        if under:
            match["$or"] = [{"path": under}, {"path": below(under)}]
        rows = list(self.coll(VERSIONS).aggregate([
            {"$match": match},
            {"$group": {"_id": "$key", "n": {"$sum": 1}, "total": {"$sum": "$size"}, "size": {"$max": "$size"}}},
            {"$group": {"_id": None, "n": {"$sum": "$n"}, "logical": {"$sum": "$total"}, "blobs": {"$sum": 1},
                        "stored": {"$sum": "$size"}}}]))
        dead = [] if under else list(self.coll(VERSIONS).aggregate([
            {"$group": {"_id": "$key", "live": {"$sum": {"$cond": [{"$eq": ["$deleted_at", None]}, 1, 0]}},
                        "size": {"$max": "$size"}}},
            {"$match": {"live": 0}},
            {"$group": {"_id": None, "bytes": {"$sum": "$size"}}}]))
        r = rows[0] if rows else {"n": 0, "logical": 0, "blobs": 0, "stored": 0}
        return Usage(int(r["n"]), int(r["logical"]), int(r["blobs"]), int(r["stored"]),
                     int(dead[0]["bytes"]) if dead else 0)

    # -- dedup at upload (mongo_shares.py) ------------------------------------------------------------

    @remote
    def claim_blob(self, sha256: str, size: int) -> str | None:
        return shares.claim(self.coll(BLOBS), sha256, size)

    @remote
    def release_blob(self, key: str) -> None:
        shares.release(self.coll(BLOBS), key)

    @remote
    def register_blob(self, v: Version) -> None:
        shares.register(self.coll(BLOBS), v)

    # -- maintenance ----------------------------------------------------------------------------------

    @remote
    def check(self, under: str = "") -> list[str]:
        """Broken invariants below `under`, one line each (empty when consistent; see mongo_repair.py)."""
        return scan(self, under).lines()

    @remote
    def repair(self, under: str = "") -> int:
        """Finish lapsed folder renames and fix what a crash left below `under` (and, for the whole
        store, claims of shared blobs a dead sharer left); returns the fixes made."""
        return repair(self, under)

    @remote
    def all_keys(self) -> set[str]:
        return {d["_id"] for d in self.coll(VERSIONS).aggregate([{"$group": {"_id": "$key"}}], batchSize=PAGE)}

    def live_versions(self) -> Iterator[Version]:
        try:
            for d in self.coll(VERSIONS).find({"deleted_at": None}, batch_size=PAGE).sort("_id", 1):
                yield doc_to_version(d)
        except PyMongoError as e:
            raise self.unavailable(e) from e

    def close(self) -> None:
        self._lease.release()
        self._client.close()
