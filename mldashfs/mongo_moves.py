"""Folder renames in the MongoDB catalog (`rename_dir`): a directory and everything below it move.

A folder may hold 100,000 files, more than one transaction should carry, and a standalone server has
no transactions at all. So a move is a resumable job whose state lives in the catalog itself:

1. mark the source directory's document with `moving` {src, dst, owner, expires} (only if unmarked);
   then look for other moves at, above or below either side, and back off if there is one;
2. claim the destination: insert its directory document (the source's explicit/mtime/mode) carrying
   the same mark (an empty destination directory, when replacing, is deleted just before);
3. copy the directory documents below the source to the destination (upserts, parents first);
4. move the files in chunks of CHUNK paths in path order: each chunk moves the versions of its paths,
   then their `files` documents; with aggregation-pipeline updates ($concat + $substrCP) a chunk is two
   update_many over a path range, else a range read and a bulk_write of one update per document. Live
   versions in the chunk's range whose `files` document was not in the chunk (a write under way) are
   reconciled at their new name (`_adopt`). The owner renews `expires` before every chunk;
5. move the versions left in the source range (deleted versions of paths no longer live);
6. steps 3-5 once more, for what writers added below the source meanwhile; then delete the directory
   documents below the source, and last the source's own (its mark goes with it);
7. unmark the destination; touch both parents; prune the source's parent and empty implied
   directories below the destination.

Every step is idempotent and picks up where it stopped. Writers that meet a marked directory at or
above their path wait for the move to end (mongo_catalog.py), and one whose lease (`expires`) lapsed is
finished by whoever meets it first (`resume`): if the destination was claimed (step 2) the move is
rolled forward from step 3, else nothing was moved and the mark is taken off. `repair` does the same
for every marked directory.

What a reader sees during a move without transactions: the destination directory from step 2 on,
filling up; the source emptying; a file is at exactly one of its two names at any moment (its
`files` document moves in one write), and `latest`/`lookup`/listings report it under the name they
found it at even while its versions' `path` still lags (history by the new name may be short until
its chunk's versions moved). A listing running across the move may show a file under both names or
under neither. With a replica set a folder of up to TXN_FILES files moves in one transaction (atomic);
a larger one moves chunk by chunk, each chunk in a transaction, so each file's move is atomic.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from .catalog import dir_move_changes_nothing
from .errors import AlreadyExists, NotADirectory, NotEmpty, NotFound, NotPermitted, Unavailable
from .mongo_schema import DIRS, FILES, PATH_MAX_CHARS, VERSIONS, ancestors, below, dir_doc
from .paths import EXPERIMENT_DEPTH, depth, split

if TYPE_CHECKING:
    from .mongo_steps import MongoSteps

#: Seconds a move's mark stays valid without renewal; then anyone may finish the move.
MOVE_TTL = 60.0
#: Longest a writer waits for another process's folder rename before Unavailable.
MOVE_WAIT = 600.0
#: Files moved per chunk (one or two round trips each).
CHUNK = 5000
#: With transactions, a folder of up to this many files moves in one transaction.
TXN_FILES = 10_000
#: Attempts of a rename that keeps meeting other renames over the same folders.
RETRIES = 20


class MustWait(Exception):
    """Raised inside a transaction that has to wait for a folder rename: it aborts, waits, runs again."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        super().__init__("a folder rename is under way")
        self.docs = docs


class _Lost(Exception):
    """Another process took this move over (this one stopped renewing it in time)."""


def moved(path: str, src: str, dst: str) -> str:
    """Where `path` is after `src` moved to `dst`."""
    if path == src:
        return dst
    if path.startswith(src + "/"):
        return dst + path[len(src):]
    return path


def wait_for(cat: MongoSteps, path: str) -> None:
    """Wait until the directory at `path` is not being moved; finish a move whose owner stopped renewing."""
    dirs = cat.coll(DIRS)
    end = time.monotonic() + MOVE_WAIT
    delay = 0.01
    while True:
        d = dirs.find_one({"path": path}, {"moving": 1})
        if d is None or "moving" not in d:
            return
        m = d["moving"]
        if m["expires"] < time.time():
            FolderMove.resume(cat, m)
            continue
        if time.monotonic() > end:
            raise Unavailable(f"{m['src']!r} has been moving to {m['dst']!r} for over {MOVE_WAIT:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


class FolderMove:
    """One folder rename, run by its owner (a random token)."""

    def __init__(self, cat: MongoSteps, src: str, dst: str, now: float, owner: str | None = None) -> None:
        self.cat = cat
        self.src = src
        self.dst = dst
        self.now = now
        self.owner = owner or secrets.token_hex(12)

    @classmethod
    def rename(cls, cat: MongoSteps, src: str, dst: str, now: float, replace: bool) -> None:
        """`Catalog.rename_dir`: checks as the SQLite catalog does, then moves (retrying on overlaps)."""
        if dir_move_changes_nothing(src, dst):
            return
        for attempt in range(RETRIES):
            move = cls(cat, src, dst, now)
            if cat.transactions and cat.coll(FILES).count_documents({"path": below(src)}) <= TXN_FILES:
                done = cat.atomic(lambda m=move: m.run(replace))  # type: ignore[misc]
            else:
                done = move.run(replace)
            if done:
                return
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise Unavailable(f"cannot rename {src!r}: other folder renames keep overlapping it")

    @classmethod
    def resume(cls, cat: MongoSteps, m: dict[str, Any]) -> None:
        """Finish (or, if it never claimed its destination, call off) a move whose mark lapsed."""
        dirs = cat.coll(DIRS)
        owner, now = secrets.token_hex(12), time.time()
        took = dirs.find_one_and_update(
            {"path": m["dst"], "moving.owner": m["owner"], "moving.expires": {"$lt": now}},
            {"$set": {"moving.owner": owner, "moving.expires": now + MOVE_TTL}})
        if took is not None:
            dirs.update_one({"path": m["src"], "moving.owner": m["owner"]},
                            {"$set": {"moving.owner": owner, "moving.expires": now + MOVE_TTL}})
            cls(cat, m["src"], m["dst"], now, owner).finish()
            return
        d = dirs.find_one({"path": m["dst"]}, {"moving": 1})
        if d is not None and "moving" in d and d["moving"]["src"] == m["src"]:
            return  # its owner is back, or someone else finishes it
        dirs.update_one({"path": m["src"], "moving.owner": m["owner"], "moving.expires": {"$lt": now}},
                        {"$unset": {"moving": ""}})

    # -- steps 1-2 -----------------------------------------------------------------------------------

    def run(self, replace: bool) -> bool:
        """The whole move; False if another move overlapped and this one backed off (nothing changed)."""
        src_doc, dst_doc = self._check(replace)
        if not self._mark(src_doc):
            return False
        if self._overlaps() or (dst_doc is not None and not self._drop_empty(dst_doc)):
            self._unmark()
            return False
        if not self._claim_dst(src_doc):
            self._unmark()
            raise AlreadyExists(f"{self.dst!r} exists")
        self.finish()
        return True

    def _check(self, replace: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The SQLite catalog's checks; returns the source's document and an empty destination's."""
        cat, src, dst = self.cat, self.src, self.dst
        ps = cat.settled_probe(src)
        if ps.dir is None:
            if ps.file is not None:
                raise NotADirectory(f"{src!r} is a file")
            raise NotFound(f"no directory {src!r}")
        cat.wait_moves(list(cat.coll(DIRS).find({"path": below(src), "moving": {"$exists": True}})))
        pd = cat.settled_probe(dst)
        pd.require_parent()
        if pd.file is not None:
            raise NotADirectory(f"{dst!r} is a file")
        if pd.dir is not None:
            if not replace:
                raise AlreadyExists(f"{dst!r} exists")
            if src.startswith(dst + "/") or cat.has_children(dst):
                raise NotEmpty(f"directory {dst!r} is not empty")
        self._check_depths()
        return ps.dir, pd.dir

    def _check_depths(self) -> None:
        """Files must stay inside an experiment (depth >= 4) after a move that makes paths shallower."""
        shift = depth(self.dst) - depth(self.src)
        if shift >= 0:
            return
        least = EXPERIMENT_DEPTH + 1 - shift  # the depth a file below the source needs now
        parents = [self.src] if depth(self.src) + 1 < least else []
        parents += [d["path"] for d in self.cat.coll(DIRS).find({"path": below(self.src)}, {"path": 1})
                    if depth(d["path"]) + 1 < least]
        for i in range(0, len(parents), 1000):
            if self.cat.coll(FILES).find_one({"parent": {"$in": parents[i : i + 1000]}}, {"_id": 1}):
                raise NotPermitted(f"moving {self.src!r} to {self.dst!r} would put files outside an experiment")

    def _flag(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "owner": self.owner, "expires": time.time() + MOVE_TTL}

    def _mark(self, src_doc: dict[str, Any]) -> bool:
        return self.cat.coll(DIRS).find_one_and_update(
            {"_id": src_doc["_id"], "path": self.src, "moving": {"$exists": False}},
            {"$set": {"moving": self._flag()}}) is not None

    def _unmark(self) -> None:
        self.cat.coll(DIRS).update_one({"path": self.src, "moving.owner": self.owner}, {"$unset": {"moving": ""}})

    def _overlaps(self) -> bool:
        """Whether another move is marked at, below or above the source, or above the destination. Both
        marks are written before either looks, so of two overlapping moves at least one sees the other."""
        near = ancestors(self.src) + ancestors(self.dst) + [self.dst]
        q = {"moving.owner": {"$exists": True, "$ne": self.owner},
             "$or": [{"path": below(self.src)}, {"path": {"$in": near}}]}
        return self.cat.coll(DIRS).find_one(q, {"_id": 1}) is not None

    def _drop_empty(self, dst_doc: dict[str, Any]) -> bool:
        """Delete the empty directory being replaced; NotEmpty if a child arrived, False if it changed."""
        dirs = self.cat.coll(DIRS)
        if dirs.delete_one({"_id": dst_doc["_id"], "moving": {"$exists": False}}).deleted_count == 0:
            return False
        if self.cat.has_children(self.dst):
            dirs.update_one({"path": self.dst}, {"$setOnInsert": {k: v for k, v in dst_doc.items()
                                                                  if k not in ("_id", "path")}}, upsert=True)
            self._unmark()
            raise NotEmpty(f"directory {self.dst!r} is not empty")
        return True

    def _claim_dst(self, src_doc: dict[str, Any]) -> bool:
        parent, name = split(self.dst)
        doc = dir_doc(self.dst, parent, name, bool(src_doc["explicit"]), src_doc["mtime"], int(src_doc["mode"]))
        doc["moving"] = self._flag()
        try:
            self.cat.coll(DIRS).insert_one(doc)
            return True
        except DuplicateKeyError:
            if self.cat.in_transaction():
                raise
            return False

    # -- steps 3-7 -----------------------------------------------------------------------------------

    def finish(self) -> None:
        """Steps 3-7 (the part a `resume` runs too)."""
        cat, dirs = self.cat, self.cat.coll(DIRS)
        try:
            for _ in range(2):
                self._copy_dirs()
                self._move_files()
                self._move_leftovers()
        except _Lost:
            wait_for(cat, self.dst)
            return
        dirs.delete_many({"path": below(self.src)})
        dirs.delete_one({"path": self.src, "$or": [{"moving.owner": self.owner}, {"moving": {"$exists": False}}]})
        dirs.update_one({"path": self.dst, "moving.owner": self.owner}, {"$unset": {"moving": ""}})
        sparent, dparent = split(self.src)[0], split(self.dst)[0]
        cat.touch(sparent, self.now)
        cat.touch(dparent, self.now)
        cat.prune(sparent)
        self._prune_tree()

    def _renew(self) -> None:
        r = self.cat.coll(DIRS).update_many({"path": {"$in": [self.src, self.dst]}, "moving.owner": self.owner},
                                          {"$set": {"moving.expires": time.time() + MOVE_TTL}})
        if r.matched_count == 0:
            raise _Lost()

    def _copy_dirs(self) -> None:
        ops: list[Any] = []
        for d in self.cat.coll(DIRS).find({"path": below(self.src)}).sort("path", 1):
            new = moved(d["path"], self.src, self.dst)
            parent, name = split(new)
            fields = {"parent": parent, "name": name, "mtime": d["mtime"], "mode": d["mode"]}
            update: dict[str, Any] = {"$setOnInsert": fields}
            if d["explicit"]:
                update["$set"] = {"explicit": True}
            else:
                fields["explicit"] = False
            ops.append(UpdateOne({"path": new}, update, upsert=True))
            if len(ops) == CHUNK:
                self._renew()
                self.cat.bulk(DIRS, ops)
                ops = []
        self.cat.bulk(DIRS, ops)

    def _move_files(self) -> None:
        files = self.cat.coll(FILES)
        stuck = 0
        last: tuple[str, int] | None = None
        while batch := list(files.find({"path": below(self.src)}, {"path": 1}).sort("path", 1).limit(CHUNK)):
            stuck = stuck + 1 if (batch[0]["path"], len(batch)) == last else 0
            if stuck > 50:
                raise Unavailable(f"moving {self.src!r} to {self.dst!r}: {batch[0]['path']!r} does not move")
            last = (batch[0]["path"], len(batch))
            self._renew()
            self.cat.atomic(lambda b=batch: self._move_chunk(b))  # type: ignore[misc]

    def _concat(self, field: str) -> dict[str, Any]:
        return {"$concat": [self.dst, {"$substrCP": [field, len(self.src), PATH_MAX_CHARS]}]}

    def _move_chunk(self, batch: list[dict[str, Any]]) -> None:
        """The versions of the paths in `batch`, then their `files` documents."""
        cat = self.cat
        rng = {"$gte": batch[0]["path"], "$lte": batch[-1]["path"]}  # inside the source's range
        if cat.pipeline_updates():
            strays = set(cat.coll(VERSIONS).distinct("path", {"path": rng, "deleted_at": None}))
            try:
                cat.coll(VERSIONS).update_many({"path": rng}, [{"$set": {"path": self._concat("$path")}}])
                cat.coll(FILES).update_many({"path": rng}, [{"$set": {
                    "path": self._concat("$path"), "parent": self._concat("$parent"), "gen": {"$add": ["$gen", 1]}}}])
                self._adopt(strays - {d["path"] for d in batch})
                return
            except DuplicateKeyError:  # a file was made at one of the new names: per document below
                if cat.in_transaction():
                    raise
            except OperationFailure:
                if cat.in_transaction():
                    raise
                cat.no_pipeline_updates()
        # One range read of the chunk's versions, then updates by _id (a server without the path index, like
        # the test server, would scan once per path with one update_many per path).
        versions = list(cat.coll(VERSIONS).find({"path": rng}, {"path": 1, "deleted_at": 1}))
        cat.bulk(VERSIONS, [UpdateOne({"_id": v["_id"], "path": v["path"]},
                                      {"$set": {"path": moved(v["path"], self.src, self.dst)}})
                            for v in versions], ordered=False)
        strays = {v["path"] for v in versions if v.get("deleted_at") is None}
        self._move_file_docs(batch)
        self._adopt(strays - {d["path"] for d in batch})

    def _move_file_docs(self, batch: list[dict[str, Any]]) -> None:
        cat = self.cat
        new = {d["path"]: moved(d["path"], self.src, self.dst) for d in batch}
        ops = [UpdateOne({"_id": d["_id"], "path": d["path"]},
                         {"$set": {"path": new[d["path"]], "parent": split(new[d["path"]])[0],
                                   "name": split(new[d["path"]])[1]}, "$inc": {"gen": 1}}) for d in batch]
        try:
            cat.coll(FILES).bulk_write(ops, ordered=False)
        except BulkWriteError as e:
            errors = e.details.get("writeErrors", [])
            if cat.in_transaction() or any(err.get("code") != 11000 for err in errors):
                raise
            for err in errors:
                self._merge(batch[err["index"]], new[batch[err["index"]]["path"]])

    def _merge(self, d: dict[str, Any], new: str) -> None:
        """A file was made at `new` while `d` moved there: its versions join that file's history."""
        self.cat.coll(FILES).delete_one({"_id": d["_id"]})
        self.cat.coll(VERSIONS).update_many({"path": d["path"]}, {"$set": {"path": new}})
        self._adopt({d["path"]})

    def _adopt(self, old_paths: set[str]) -> None:
        """Reconcile the new names of paths whose live versions moved without their `files` document (a
        write under way, or a delete): they get one (or lose it), and their parents. Never waits: the
        marks it would meet are this move's own."""
        for old in sorted(old_paths):
            p = moved(old, self.src, self.dst)
            if self.cat.reconcile(p, self.now):
                missing, blocker = self.cat.probe(p, up=True).missing_parents()
                if blocker is None:
                    self.cat.make_dirs(missing, self.now)

    def _move_leftovers(self) -> None:
        versions = self.cat.coll(VERSIONS)
        live = versions.distinct("path", {"path": below(self.src), "deleted_at": None})
        while batch := list(versions.find({"path": below(self.src)}, {"path": 1}).limit(CHUNK)):
            self._renew()
            self.cat.bulk(VERSIONS, [UpdateOne({"_id": v["_id"], "path": v["path"]},
                                               {"$set": {"path": moved(v["path"], self.src, self.dst)}})
                                     for v in batch], ordered=False)
        self._adopt(set(live))

    def _prune_tree(self) -> None:
        """Implied directories below the destination left empty by deletes that overlapped the move."""
        cat = self.cat
        parents = set(cat.coll(FILES).distinct("parent", {"path": below(self.dst)}))
        parents |= set(cat.coll(DIRS).distinct("parent", {"path": below(self.dst)}))
        for d in list(cat.coll(DIRS).find({"path": below(self.dst), "explicit": False}, {"path": 1}).sort("path", -1)):
            if d["path"] not in parents:
                cat.prune(d["path"])
