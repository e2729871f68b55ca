"""What only the MongoDB catalog promises: its indexes, node leases unique across processes and taken over
once lapsed, consistency under concurrent writers without transactions, folder renames of thousands of
files (also after a crash mid-way), fast failure when MongoDB is unreachable. Always over TCP through
pymongo, to the wire test server or $MLDASH_TEST_MONGO_URI."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import random
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson.int64 import Int64
from pymongo import MongoClient

from mldashfs import errors
from mldashfs.catalog import NewerExists
from mldashfs.ids import MAX_NODE, Snowflake
from mldashfs.local_blobs import LocalBlobs
from mldashfs.mongo_catalog import MongoCatalog
from mldashfs.mongo_moves import FolderMove
from mldashfs.mongo_schema import DIRS, FILES, NODES, VERSIONS, ancestors, version_doc
from mldashfs.records import Dir, Version
from mldashfs.staging import Staging
from mldashfs.store import INTERNAL, Store

E = "alice/cv/resnet"


def open_store(uri: str, db: str, root: str) -> Store:
    """A Store over the MongoDB catalog and local blobs in `root` (shared by the processes of a test)."""
    os.makedirs(os.path.join(root, INTERNAL), exist_ok=True)
    blobs = LocalBlobs(root)
    return Store(root, MongoCatalog(uri, db), blobs, blobs, Staging(os.path.join(root, INTERNAL, "staging")))


@pytest.fixture
def db(mongo_uri: str, mongo_db_name: str) -> Iterator[Any]:
    """The test's database, read directly (to check what the catalog wrote)."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    with client:
        yield client[mongo_db_name]


@pytest.fixture
def catalog(mongo_uri: str, mongo_db_name: str) -> Iterator[MongoCatalog]:
    cat = MongoCatalog(mongo_uri, mongo_db_name)
    yield cat
    cat.close()


def a_version(vid: int, path: str, **kw: Any) -> Version:
    now = time.time()
    fields: dict[str, Any] = dict(id=vid, path=path, size=1, sha256="0" * 64, content_type="application/octet-stream",
                                  description=None, tags=(), metadata={}, created_at=now, updated_at=now, mtime=now,
                                  mode=0o644, state="local", key=f"k/{vid}")
    fields.update(kw)
    return Version(**fields)


def head(cat: MongoCatalog, path: str) -> Version:
    v = cat.latest(path)
    assert v is not None, f"no file {path}"
    return v


def folder(cat: MongoCatalog, path: str) -> Dir:
    d = cat.get_dir(path)
    assert d is not None, f"no directory {path}"
    return d


def inconsistencies(db: Any) -> list[str]:
    """The catalog's invariants checked from the raw collections (independently of `MongoCatalog.check`)."""
    out: list[str] = []
    live: dict[str, int] = {}
    for v in db[VERSIONS].find({"deleted_at": None}, {"path": 1}):
        live[v["path"]] = max(live.get(v["path"], 0), int(v["_id"]))
    files = list(db[FILES].find())
    dirs = {d["path"]: d for d in db[DIRS].find()}
    paths = [f["path"] for f in files]
    if len(paths) != len(set(paths)) or len(dirs) != db[DIRS].count_documents({}):
        out.append("duplicate documents")
    busy = {f["parent"] for f in files} | {d["parent"] for d in dirs.values()}
    for f in files:
        if live.pop(f["path"], None) != int(f["latest"]):
            out.append(f"files.latest of {f['path']} is not its newest live version")
        if f["parent"] not in dirs:
            out.append(f"parent of file {f['path']} is missing")
        if f["path"] in dirs:
            out.append(f"{f['path']} is a file and a directory")
    out += [f"live versions of {p} but no file" for p in live]
    for p, d in dirs.items():
        if p and d["parent"] not in dirs:
            out.append(f"parent of directory {p} is missing")
        if p and not d["explicit"] and p not in busy:
            out.append(f"implied directory {p} is empty")
        if "moving" in d:
            out.append(f"directory {p} is still marked as moving")
    return out


# -- schema ----------------------------------------------------------------------------------------


def test_indexes_exist_for_every_lookup(catalog: MongoCatalog, mongo_uri: str, db: Any) -> None:
    def keys(coll: str) -> dict[tuple[tuple[str, int], ...], bool]:
        return {tuple((k, int(d)) for k, d in ix["key"].items()): bool(ix.get("unique"))
                for ix in db[coll].list_indexes()}

    files, dirs, versions = keys(FILES), keys(DIRS), keys(VERSIONS)
    assert files[(("path", 1),)] and files[(("parent", 1), ("name", 1))]
    assert dirs[(("path", 1),)] and (("parent", 1), ("name", 1)) in dirs
    for ix in [(("path", 1), ("_id", 1)), (("key", 1),), (("tags", 1),), (("updated_at", 1),)]:
        assert ix in versions
    MongoCatalog(mongo_uri, db.name).close()  # opening again creates nothing new and fails on nothing
    assert keys(FILES) == files and keys(VERSIONS) == versions


def test_documents_are_as_the_schema_says(catalog: MongoCatalog, db: Any) -> None:
    meta = {"a.b": 1, "$c": {"d.e": [1, 2]}, "big": 1 << 70}  # keys MongoDB would refuse or mangle
    v = catalog.insert_version(a_version(1 << 50, f"{E}/m.json", tags=("x", "y"), metadata=meta))
    doc = db[VERSIONS].find_one({"_id": 1 << 50})
    assert isinstance(doc["_id"], Int64) and doc["tags"] == ["x", "y"] and isinstance(doc["metadata"], str)
    assert catalog.get_version(v.id) == v and head(catalog, v.path).metadata == meta
    assert db[FILES].find_one({"path": v.path}, {"_id": 0, "gen": 0}) == {
        "path": v.path, "parent": E, "name": "m.json", "latest": 1 << 50}
    assert [d["path"] for d in db[DIRS].find().sort("path", 1)] == ["", "alice", "alice/cv", E]
    assert folder(catalog, "").explicit


def test_readers_in_the_middle_of_a_delete_see_the_version_before(catalog: MongoCatalog, db: Any) -> None:
    older = catalog.insert_version(a_version(1, f"{E}/d/f", tags=("keep",)))
    catalog.insert_version(a_version(2, f"{E}/d/f"))
    db[VERSIONS].update_one({"_id": 2}, {"$set": {"deleted_at": time.time()}})  # marked, not yet reconciled
    assert catalog.lookup(f"{E}/d/f") == older and head(catalog, f"{E}/d/f") == older
    assert [e.version for e in catalog.listdir(f"{E}/d", None, 10)] == [older]
    assert [st.size for st in catalog.list_stats(f"{E}/d", None, 10)] == [1]
    assert list(catalog.iter_files(E)) == [older]
    v3 = catalog.insert_version(a_version(3, f"{E}/d/f"), inherit=("tags",))  # inherits from the live one
    assert v3.tags == ("keep",) and inconsistencies(db) == []


def test_nowait_always_would_block(catalog: MongoCatalog) -> None:
    with pytest.raises(errors.WouldBlock):
        catalog.insert_version(a_version(5, f"{E}/f"), nowait=True)
    assert catalog.lookup(f"{E}/f") is None and catalog.lookup(E) is None


# -- leases ----------------------------------------------------------------------------------------


def _hold_a_node(uri: str, db: str, out: Any, stop: Any) -> None:
    try:
        cat = MongoCatalog(uri, db)
        out.put(cat.claim_node())
        stop.wait(60)
        cat.close()
    except BaseException:
        out.put(traceback.format_exc())


def test_leases_are_unique_across_processes(mongo_uri: str, mongo_db_name: str, db: Any) -> None:
    ctx = mp.get_context("spawn")
    out, stop = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_hold_a_node, args=(mongo_uri, mongo_db_name, out, stop)) for _ in range(4)]
    for p in procs:
        p.start()
    try:
        nodes = [out.get(timeout=60) for _ in procs]
        assert all(isinstance(n, int) for n in nodes), nodes
        assert len(set(nodes)) == 4
        owners = {d["_id"]: d["owner"] for d in db[NODES].find()}
        assert set(owners) == set(nodes) and len(set(owners.values())) == 4
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert db[NODES].count_documents({}) == 0  # released on close


def test_a_lapsed_lease_is_taken_over_and_its_old_holder_stops(mongo_uri: str, mongo_db_name: str,
                                                               db: Any) -> None:
    a = MongoCatalog(mongo_uri, mongo_db_name, lease_ttl=1.0, lease_renew=3600)  # a holder that never renews
    b = MongoCatalog(mongo_uri, mongo_db_name)
    try:
        node = a.claim_node()
        far = time.time() + 3600
        db[NODES].insert_many([{"_id": n, "owner": "other", "expires_at": far} for n in range(MAX_NODE + 1) if n != node])
        with pytest.raises(errors.Unavailable, match="leased"):
            b.claim_node()  # the only free-looking node is a's, still valid
        vid = Snowflake(lambda: node).next()
        with pytest.raises(errors.Unavailable, match="lease"):  # 1 s lease: under the safety margin at once
            a.insert_version(a_version(vid, f"{E}/f"))
        time.sleep(1.2)
        assert b.claim_node() == node  # lapsed: taken over
        assert not a._lease.renew()  # a learns it lost the node, and refuses its ids for good
        with pytest.raises(errors.Unavailable, match="taken over"):
            a.insert_version(a_version(vid, f"{E}/f"))
        assert db[NODES].find_one({"_id": node})["owner"] == b._lease._token
    finally:
        a.close()
        b.close()
    assert db[NODES].find_one({"_id": node}) is None  # b released it; a did not delete b's lease


def test_a_renewed_lease_is_kept(mongo_uri: str, mongo_db_name: str, db: Any) -> None:
    with_renewal = MongoCatalog(mongo_uri, mongo_db_name, lease_ttl=6.0, lease_renew=0.2)
    try:
        node = with_renewal.claim_node()
        first = db[NODES].find_one({"_id": node})["expires_at"]
        time.sleep(1.0)
        assert db[NODES].find_one({"_id": node})["expires_at"] > first
        vid = Snowflake(lambda: node).next()
        assert with_renewal.insert_version(a_version(vid, f"{E}/f")).id == vid
    finally:
        with_renewal.close()


# -- errors ----------------------------------------------------------------------------------------


def test_an_unreachable_server_fails_fast_and_clearly() -> None:
    start = time.monotonic()
    with pytest.raises(errors.Unavailable, match=r"cannot reach MongoDB at 127\.0\.0\.1:1"):
        MongoCatalog("mongodb://127.0.0.1:1/", timeout=1.0)
    assert time.monotonic() - start < 10
    with pytest.raises(errors.InvalidValue, match="bad MongoDB URI"):
        MongoCatalog("http://127.0.0.1/")


def test_a_server_going_away_is_unavailable_not_a_pymongo_error(mongo_uri: str, mongo_db_name: str) -> None:
    from tests.servers.mongo import start_mongo_server

    with start_mongo_server() as server:
        cat = MongoCatalog(server.uri, mongo_db_name, timeout=1.0)
        cat.insert_version(a_version(7, f"{E}/f"))
        server.stop()
        with pytest.raises(errors.Unavailable, match="MongoDB"):
            cat.latest(f"{E}/f")
        with pytest.raises(errors.Unavailable, match="MongoDB"):
            list(cat.iter_files(""))
        cat.close()


def test_publishing_a_version_again_finishes_a_half_done_insert(catalog: MongoCatalog, db: Any) -> None:
    old = catalog.insert_version(a_version(10, f"{E}/p"))
    v = a_version(20, f"{E}/p")
    db[VERSIONS].insert_one(version_doc(v))  # a publisher that died after step 2 of insert_version
    assert catalog.latest(v.path) == old
    with pytest.raises(errors.AlreadyExists):
        catalog.insert_version(v)  # its retry
    assert catalog.latest(v.path) == v and inconsistencies(db) == []
    with pytest.raises(errors.AlreadyExists):
        catalog.insert_version(v)  # and once more, now that it is the newest


def test_an_insert_below_the_newest_id_changes_nothing(catalog: MongoCatalog, db: Any) -> None:
    catalog.insert_version(a_version(10, f"{E}/n"))
    with pytest.raises(NewerExists) as e:
        catalog.insert_version(a_version(5, f"{E}/n"))
    assert e.value.newest == 10 and catalog.get_version(5) is None and head(catalog, f"{E}/n").id == 10


# -- concurrency -----------------------------------------------------------------------------------


def _churn(uri: str, db: str, root: str, who: int, ops: int, out: Any) -> None:
    """Random creates, overwrites, deletes, file renames, folder renames (of the folder others write into)
    and mkdirs in one experiment; reports how many of each succeeded and which errors lost races."""
    rnd = random.Random(who)
    done: dict[str, Any] = {"ids": []}
    try:
        with open_store(uri, db, root) as s:
            for i in range(ops):
                op = rnd.choice(["put", "put", "hot", "hot", "hot", "delete", "rename", "onto", "folder", "subfolder",
                                 "mkdir", "drop"])
                try:
                    if op == "put":
                        done["ids"].append(s.put_bytes(f"{E}/shared/f{rnd.randrange(6)}", f"{who}:{i}".encode()).id)
                    elif op == "hot":
                        done["ids"].append(s.put_bytes(f"{E}/hot/d{rnd.randrange(3)}/h{rnd.randrange(8)}", b"h").id)
                    elif op == "delete":
                        s.delete(f"{E}/{rnd.choice(['shared/f', 'hot/d0/h', 'hot/d1/h'])}{rnd.randrange(6)}")
                    elif op == "rename":
                        s.rename(f"{E}/shared/f{rnd.randrange(6)}", f"{E}/shared/g{who}-{i}")
                    elif op == "onto":
                        s.rename(f"{E}/shared/f{rnd.randrange(6)}", f"{E}/shared/f{rnd.randrange(6)}")
                    elif op == "folder":
                        s.rename(f"{E}/hot", f"{E}/archive-{who}-{i}")
                    elif op == "subfolder":
                        s.rename(f"{E}/hot/d{rnd.randrange(3)}", f"{E}/hot/e{who}-{i}")
                    elif op == "mkdir":
                        s.mkdir(f"{E}/hot/m{rnd.randrange(3)}", parents=True, exist_ok=True)
                    else:
                        s.delete_version(s.latest(f"{E}/shared/f{rnd.randrange(6)}").id)
                    done[op] = done.get(op, 0) + 1
                except errors.Unavailable:
                    raise
                except errors.StoreError as e:  # a race lost: NotFound, AlreadyExists, NotEmpty...
                    done[type(e).__name__] = done.get(type(e).__name__, 0) + 1
        out.put(("ok", done))
    except BaseException:
        out.put(("failed", traceback.format_exc()))


def test_concurrent_writers_leave_a_consistent_catalog(mongo_uri: str, mongo_db_name: str, db: Any,
                                                        tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    root = str(tmp_path / "store")
    procs = [ctx.Process(target=_churn, args=(mongo_uri, mongo_db_name, root, w, 120, out)) for w in range(3)]
    for p in procs:
        p.start()
    with open_store(mongo_uri, mongo_db_name, root) as s:  # and threads of a fourth client
        def put_many(t: int) -> None:
            for i in range(40):
                s.put_bytes(f"{E}/shared/f{i % 6}", f"t{t}:{i}".encode())
                s.put_bytes(f"{E}/hot/d1/t{t}-{i % 5}", b"t")

        threads = [threading.Thread(target=put_many, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        results = [out.get(timeout=240) for _ in procs]
        for t in threads:
            t.join()
        for p in procs:
            p.join(timeout=60)
        assert all(r[0] == "ok" for r in results), [r[1] for r in results if r[0] != "ok"]
        done = {op: sum(r[1].get(op, 0) for r in results) for op in ("folder", "subfolder", "onto", "delete", "drop")}
        assert done["folder"] + done["subfolder"] and done["onto"] and done["delete"] + done["drop"], done  # not all lost
        assert inconsistencies(db) == []
        assert isinstance(s.catalog, MongoCatalog) and s.catalog.check() == []
        committed = [i for r in results for i in r[1]["ids"]]  # every put that returned is in the catalog
        assert db[VERSIONS].count_documents({"_id": {"$in": committed}}) == len(committed) > 0
        ids = [int(v["_id"]) for v in db[VERSIONS].find({}, {"_id": 1})]
        assert len(ids) == len(set(ids))
        for v in s.list(E):  # every live file reads back the bytes of its newest version
            assert hashlib.sha256(s.read_bytes(v)).hexdigest() == v.sha256


def test_threads_creating_one_new_file_make_one_file(catalog: MongoCatalog, db: Any) -> None:
    ids = iter(range(100, 100_000))
    lock = threading.Lock()
    newest: list[int] = []

    def create() -> None:
        for _ in range(20):
            with lock:
                vid = next(ids)
            while True:
                try:
                    newest.append(catalog.insert_version(a_version(vid, f"{E}/new/deep/one.bin")).id)
                    break
                except NewerExists as e:  # what the Store does: an id above the newer one
                    with lock:
                        vid = next(i for i in ids if i > e.newest)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db[FILES].count_documents({}) == 1 and head(catalog, f"{E}/new/deep/one.bin").id == max(newest)
    assert len(catalog.history(f"{E}/new/deep/one.bin")) == 160 and inconsistencies(db) == []


def test_a_directory_made_at_the_path_of_a_new_file_wins(catalog: MongoCatalog, mongo_uri: str,
                                                          mongo_db_name: str, db: Any) -> None:
    other = MongoCatalog(mongo_uri, mongo_db_name)
    bump = catalog.bump

    def mkdir_first(path: str, vid: int) -> bool:  # another client's mkdir lands between the checks and the write
        other.mkdir(path, time.time(), True, False)
        return bump(path, vid)

    catalog.bump = mkdir_first  # type: ignore[method-assign]
    try:
        with pytest.raises(errors.IsADirectory):
            catalog.insert_version(a_version(9, f"{E}/x"))
    finally:
        other.close()
    assert catalog.get_version(9) is None and folder(catalog, f"{E}/x").explicit
    assert inconsistencies(db) == []


def test_a_put_overlapping_a_rename_of_its_folder_lands_in_one_place(catalog: MongoCatalog, mongo_uri: str,
                                                                     mongo_db_name: str, db: Any) -> None:
    catalog.insert_version(a_version(1, f"{E}/d/f"))
    other = MongoCatalog(mongo_uri, mongo_db_name)
    bump = catalog.bump

    def rename_first(path: str, vid: int) -> bool:  # the folder moves after the version went in
        catalog.bump = bump  # type: ignore[method-assign]
        other.rename_dir(f"{E}/d", f"{E}/d2", time.time(), True)
        return bump(path, vid)

    catalog.bump = rename_first  # type: ignore[method-assign]
    try:
        catalog.insert_version(a_version(2, f"{E}/d/f"))
    finally:
        other.close()
    assert inconsistencies(db) == []
    assert head(catalog, f"{E}/d2/f").id == 2 and catalog.lookup(f"{E}/d") is None
    assert [v.id for v in catalog.history(f"{E}/d2/f")] == [1, 2]


def test_every_call_can_join_a_session(catalog: MongoCatalog) -> None:
    """Under a replica set every write runs in a transaction, its calls carrying the session. The test
    server is a standalone, so this checks the plumbing with a session and no transaction."""
    with catalog._client.start_session() as session:
        catalog._local.session = session
        try:
            catalog.insert_version(a_version(1, f"{E}/d/f"))
            catalog.insert_version(a_version(2, f"{E}/d/f"), inherit=("tags",))
            catalog.mkdir(f"{E}/m", time.time(), False, False)
            catalog.rename_file(f"{E}/d/f", f"{E}/d/g", 3, time.time(), True)
            catalog.insert_version(a_version(4, f"{E}/d/h"))
            catalog.rename_file(f"{E}/d/h", f"{E}/d/g", 5, time.time(), True)
            catalog.rename_dir(f"{E}/d", f"{E}/e", time.time(), True)
            catalog.delete_version(5, time.time())
            assert head(catalog, f"{E}/e/g").id == 2 and [e.name for e in catalog.listdir(E, None, 9)] == ["e", "m"]
            catalog.delete_path(f"{E}/e/g", time.time())
            catalog.rmdir(f"{E}/m")
            catalog.forget_keys(catalog.dead_keys())
            assert catalog.check() == [] and list(catalog.iter_files("")) == []
        finally:
            catalog._local.session = None


# -- dedup: sharers and gc (mongo_shares.py) -------------------------------------------------------


def a_shared_blob(catalog: MongoCatalog) -> Version:
    """A version whose blob is registered for sharing, then deleted: gc's to take unless claimed."""
    v = catalog.insert_version(a_version(1, f"{E}/a.pt", sha256="5" * 64, size=100))
    catalog.register_blob(v)
    catalog.delete_path(v.path, time.time())
    return v


def test_a_blob_claimed_before_gc_looks_is_kept_and_shared(catalog: MongoCatalog, db: Any) -> None:
    old = a_shared_blob(catalog)
    assert catalog.claim_blob(old.sha256, old.size) == old.key  # a sharer, between claim and publish
    assert catalog.dead_keys() == []  # gc sees the claim
    catalog.insert_version(a_version(2, f"{E}/b.pt", sha256=old.sha256, size=100, key=old.key))
    catalog.release_blob(old.key)
    assert catalog.dead_keys() == []  # now a live version names it
    assert db["blobs"].find_one({"_id": old.key})["dying"] is None
    catalog.delete_path(f"{E}/b.pt", time.time())
    assert catalog.dead_keys() == [old.key]


def test_a_blob_gc_marked_first_cannot_be_claimed(catalog: MongoCatalog, db: Any) -> None:
    old = a_shared_blob(catalog)
    assert catalog.dead_keys() == [old.key]  # marked dying: its object is about to go
    assert catalog.claim_blob(old.sha256, old.size) is None  # the sharer uploads its own bytes
    catalog.forget_keys([old.key])
    assert db["blobs"].count_documents({}) == 0 and db[VERSIONS].count_documents({}) == 0


def test_a_dying_blob_a_live_version_still_names_is_kept(catalog: MongoCatalog, db: Any) -> None:
    old = a_shared_blob(catalog)
    db["blobs"].update_one({"_id": old.key}, {"$set": {"dying": time.time()}})  # a gc that died mid-way
    catalog.insert_version(a_version(3, f"{E}/c.pt", key=old.key))  # e.g. a rename onto a file
    assert catalog.dead_keys() == []
    catalog.delete_path(f"{E}/c.pt", time.time())
    assert catalog.dead_keys() == [old.key]


# -- folder renames --------------------------------------------------------------------------------


def fill_folder(db: Any, top: str, n: int, subdirs: int = 10) -> int:
    """`n` files (two versions each, the older deleted) below `top` in `subdirs` folders, written directly:
    the same documents insert_version writes, minus thousands of round trips."""
    now = time.time()
    dirs = {a for a in ancestors(top + "/x")} | {f"{top}/s{j}" for j in range(subdirs)}
    db[DIRS].insert_many([{"path": d, "parent": d.rpartition("/")[0], "name": d.rpartition("/")[2],
                           "explicit": d == f"{top}/s0", "mtime": now, "mode": 0o755} for d in sorted(dirs)])
    versions, files = [], []
    for i in range(n):
        path = f"{top}/s{i % subdirs}/f{i:06}.bin"
        old, new = a_version(2 * i + 1, path), a_version(2 * i + 2, path)
        versions += [version_doc(old) | {"deleted_at": now}, version_doc(new)]
        files.append({"path": path, "parent": path.rpartition("/")[0], "name": path.rpartition("/")[2],
                      "latest": Int64(new.id), "gen": 1})
    db[VERSIONS].insert_many(versions)
    db[FILES].insert_many(files)
    return 2 * n


def test_renaming_a_folder_of_thousands_of_files(catalog: MongoCatalog, db: Any) -> None:
    n = 3000
    fill_folder(db, f"{E}/runs", n)
    catalog.insert_version(a_version(1 << 40, f"{E}/runs-x/keep"))  # a neighbour in path order
    catalog.mkdir(f"{E}/old", time.time(), False, False)
    assert inconsistencies(db) == []
    start = time.monotonic()
    catalog.rename_dir(f"{E}/runs", f"{E}/old/runs", time.time(), True)
    took = time.monotonic() - start
    assert took < 60, f"renaming {n} files took {took:.1f} s"
    assert inconsistencies(db) == []
    moved = list(catalog.iter_files(f"{E}/old/runs"))
    assert len(moved) == n and moved[0].path == f"{E}/old/runs/s0/f000000.bin"
    assert db[VERSIONS].count_documents({"path": {"$regex": "^alice/cv/resnet/runs/"}}) == 0  # deleted ones too
    assert catalog.get_dir(f"{E}/runs") is None and folder(catalog, f"{E}/old/runs/s0").explicit
    assert [v.path for v in catalog.iter_files(f"{E}/runs-x")] == [f"{E}/runs-x/keep"]
    assert len(catalog.history(f"{E}/old/runs/s3/f000003.bin")) == 1
    assert catalog.deleted_since(f"{E}/old/runs/s3/f000003.bin", 0)


class Crash(Exception):
    pass


def test_a_folder_rename_that_crashed_midway_is_finished_by_the_next_writer(
        catalog: MongoCatalog, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_folder(db, f"{E}/runs", 500, subdirs=3)
    monkeypatch.setattr("mldashfs.mongo_moves.CHUNK", 100)
    real = FolderMove._move_chunk
    calls = 0

    def crash_on_third(self: FolderMove, batch: list[dict[str, Any]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Crash()
        real(self, batch)

    monkeypatch.setattr(FolderMove, "_move_chunk", crash_on_third)
    with pytest.raises(Crash):
        catalog.rename_dir(f"{E}/runs", f"{E}/done", time.time(), True)
    monkeypatch.setattr(FolderMove, "_move_chunk", real)
    assert db[FILES].count_documents({"path": {"$regex": "^alice/cv/resnet/done/"}}) == 200
    assert any("moving" in line for line in catalog.check())
    db[DIRS].update_many({"moving": {"$exists": True}}, {"$set": {"moving.expires": time.time() - 1}})  # it lapses
    # A writer below the source waits for the move, finds it lapsed, finishes it, then writes.
    catalog.insert_version(a_version(1 << 41, f"{E}/runs/s1/late.bin"))
    assert db[FILES].count_documents({"path": {"$regex": "^alice/cv/resnet/done/"}}) == 500
    assert catalog.latest(f"{E}/runs/s1/late.bin") is not None  # written after the move: a new folder
    assert inconsistencies(db) == [] and catalog.check() == []


def test_a_folder_rename_that_crashed_before_claiming_its_destination_is_called_off(
        catalog: MongoCatalog, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog.insert_version(a_version(3, f"{E}/a/f"))

    def crash(self: FolderMove, src_doc: dict[str, Any]) -> bool:
        raise Crash()

    monkeypatch.setattr(FolderMove, "_claim_dst", crash)
    with pytest.raises(Crash):
        catalog.rename_dir(f"{E}/a", f"{E}/b", time.time(), True)
    db[DIRS].update_many({"moving": {"$exists": True}}, {"$set": {"moving.expires": time.time() - 1}})
    assert catalog.repair() == 1
    assert catalog.latest(f"{E}/a/f") is not None and catalog.get_dir(f"{E}/b") is None
    assert inconsistencies(db) == []


def test_readers_during_a_folder_rename_see_each_file_once(catalog: MongoCatalog, db: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fill_folder(db, f"{E}/runs", 600, subdirs=2)
    monkeypatch.setattr("mldashfs.mongo_moves.CHUNK", 50)
    seen: list[int] = []
    real = FolderMove._move_chunk

    def look(self: FolderMove, batch: list[dict[str, Any]]) -> None:
        real(self, batch)
        src = sum(1 for _ in catalog.iter_files(f"{E}/runs"))
        dst = sum(1 for _ in catalog.iter_files(f"{E}/new"))
        seen.append(src + dst)
        for name in ("f000000.bin", "f000598.bin"):  # a file is at one of its two names, with its newest version
            found = [catalog.lookup(f"{top}/s0/{name}") for top in (f"{E}/runs", f"{E}/new")]
            assert sum(v is not None for v in found) == 1

    monkeypatch.setattr(FolderMove, "_move_chunk", look)
    catalog.rename_dir(f"{E}/runs", f"{E}/new", time.time(), True)
    assert seen and all(n == 600 for n in seen)
    assert inconsistencies(db) == []


# -- repair ----------------------------------------------------------------------------------------


def test_repair_fixes_what_crashes_leave(catalog: MongoCatalog, db: Any) -> None:
    catalog.insert_version(a_version(1, f"{E}/ok/f"))
    db[VERSIONS].insert_one(version_doc(a_version(2, f"{E}/orphan/g")))  # died after inserting the version
    db[DIRS].insert_one({"path": f"{E}/empty", "parent": E, "name": "empty", "explicit": False, "mtime": 1.0,
                         "mode": 0o755})  # died after making a parent
    db[FILES].insert_one({"path": f"{E}/lost/h", "parent": f"{E}/lost", "name": "h", "latest": 3, "gen": 1})
    db[VERSIONS].insert_one(version_doc(a_version(3, f"{E}/lost/h")))  # its parent pruned under it
    assert len(catalog.check()) == 3
    assert catalog.repair() == 3
    assert catalog.check() == [] and inconsistencies(db) == []
    assert head(catalog, f"{E}/orphan/g").id == 2 and catalog.get_dir(f"{E}/lost") is not None
    assert catalog.get_dir(f"{E}/empty") is None

