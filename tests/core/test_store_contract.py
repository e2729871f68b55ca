"""The Store contract (docs/store-api.md), run against every backend."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import time
from pathlib import Path

import pytest

from mldashfs import errors
from mldashfs.catalog import Catalog
from mldashfs.ids import Snowflake, timestamp_ms
from mldashfs.paths import STORE_PATH_MAX
from mldashfs.records import Dir, Stat, Version
from mldashfs.store import Store
from tests.page_cache import resident_pages

E = "alice/cv/resnet"


def test_put_bytes_records_everything(store: Store) -> None:
    v = store.put_bytes(f"{E}/models/best.pt", b"weights", description="best", tags=["a", "b"],
                        metadata={"epoch": 3})
    assert v.size == 7 and v.sha256 == hashlib.sha256(b"weights").hexdigest()
    assert (v.name, v.prefix, v.experiment) == ("best.pt", "models", E)
    assert v.content_type == "application/octet-stream"
    assert store.latest(f"{E}/models/best.pt") == v
    assert store.get_version(v.id_str) == v
    d = v.to_dict()
    for k in ("id", "filename", "path", "sizeBytes", "checksum", "contentType", "description", "tags",
              "metadata", "createdAt", "updatedAt"):
        assert k in d
    assert d["id"] == str(v.id) and d["tags"] == ["a", "b"] and d["metadata"] == {"epoch": 3}
    assert store.read_bytes(v) == b"weights"


def test_every_save_is_a_new_version_and_history_keeps_them(store: Store) -> None:
    p = f"{E}/cfg.json"
    vs = [store.put_bytes(p, f'{{"i": {i}}}'.encode()) for i in range(5)]
    assert [v.id for v in store.history(p)] == [v.id for v in vs]
    assert sorted(v.id for v in vs) == [v.id for v in vs]
    assert store.latest(p).id == vs[-1].id
    assert store.latest(p).content_type == "application/json"
    assert [store.read_bytes(v) for v in store.history(p)] == [f'{{"i": {i}}}'.encode() for i in range(5)]


def test_put_file_hashes_while_copying_and_keeps_the_layout(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(9 << 20)  # over one copy chunk: the pipelined path
    src.write_bytes(data)
    seen: list[int] = []
    v = store.put_file(f"{E}/data/big.bin", src, progress=seen.append)
    assert v.sha256 == hashlib.sha256(data).hexdigest() and v.size == len(data)
    assert sum(seen) == len(data)
    if not store.remote:  # the ML-Dash layout of a local store (a remote one's: tests/remote)
        assert store.local_file(v) == os.path.join(store.root, E, "files", "data", v.id_str, "big.bin")
    assert Path(store.local_file(v)).read_bytes() == data


def test_put_stream_and_writer(store: Store) -> None:
    v = store.put_stream(f"{E}/s.bin", io.BytesIO(b"x" * 100_000))
    assert v.size == 100_000 and v.sha256 == hashlib.sha256(b"x" * 100_000).hexdigest()
    with store.open_writer(f"{E}/w.txt", tags=["w"]) as w:
        w.write(b"hello world")
        w.seek(0)
        w.write(b"J")  # a random write: commit re-hashes
    assert isinstance(w.version, Version)
    assert store.read_bytes(w.version) == b"Jello world"
    assert w.version.sha256 == hashlib.sha256(b"Jello world").hexdigest()
    assert w.version.tags == ("w",)


def test_writer_discards_on_exception_and_through_fspath(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.open_writer(f"{E}/half.bin") as w:
            w.write(b"partial")
            raise RuntimeError("encoder failed")
    with pytest.raises(errors.NotFound):
        store.latest(f"{E}/half.bin")
    with store.open_writer(f"{E}/via-path.txt") as w:
        assert w.fspath.endswith(".txt")
        Path(w.fspath).write_bytes(b"written by a tool")
    assert store.read_bytes(w.version) == b"written by a tool"
    assert w.version.sha256 == hashlib.sha256(b"written by a tool").hexdigest()
    assert os.listdir(store.staging.folder) == []


def test_staged_sequential_append_random_and_truncate(store: Store) -> None:
    base = store.put_bytes(f"{E}/f.bin", b"0123456789")
    st = store.stage(base)
    st.write(10, b"abc")  # append continues the base's hash
    v = store.commit(f"{E}/f.bin", st)
    assert store.read_bytes(v) == b"0123456789abc" and v.sha256 == hashlib.sha256(b"0123456789abc").hexdigest()
    st = store.stage(v)
    st.write(2, b"ZZ")
    st.truncate(6)
    v2 = store.commit(f"{E}/f.bin", st)
    assert store.read_bytes(v2) == b"01ZZ45" and v2.sha256 == hashlib.sha256(b"01ZZ45").hexdigest()
    st = store.stage(v2)
    st.truncate(0)
    st.write(0, b"new")
    st.truncate(5)  # extension by zeros
    v3 = store.commit(f"{E}/f.bin", st)
    assert store.read_bytes(v3) == b"new\0\0" and v3.sha256 == hashlib.sha256(b"new\0\0").hexdigest()
    assert store.read_bytes(base) == b"0123456789"  # earlier versions never change


def test_commit_carries_metadata_over_unless_given(store: Store) -> None:
    v = store.put_bytes(f"{E}/m.txt", b"1", tags=["keep"], description="d", metadata={"k": 1})
    v2 = store.commit(f"{E}/m.txt", store.stage(v))
    assert (v2.tags, v2.description, v2.metadata) == (("keep",), "d", {"k": 1})
    v3 = store.commit(f"{E}/m.txt", store.stage(v2), tags=[])
    assert v3.tags == ()


def test_list_by_prefix_glob_and_tags(store: Store) -> None:
    for p, tags in [("images/a.png", ["x"]), ("images/b.png", []), ("images/deep/c.png", ["x"]),
                    ("cfg/a.json", []), ("cfg/sub/b.json", ["x"]), ("top.json", [])]:
        store.put_bytes(f"{E}/{p}", b"1", tags=tags)
    rel = lambda vs: [v.path[len(E) + 1 :] for v in vs]  # noqa: E731
    assert rel(store.list(f"{E}/images", "*.png")) == ["images/a.png", "images/b.png"]
    assert rel(store.list(E, "**/*.json")) == ["cfg/a.json", "cfg/sub/b.json", "top.json"]
    assert rel(store.list(E, "images/**")) == ["images/a.png", "images/b.png", "images/deep/c.png"]
    assert rel(store.list(E, tags=["x"])) == ["cfg/sub/b.json", "images/a.png", "images/deep/c.png"]
    assert len(store.list("")) == 6


def test_listdir_pages_and_shows_dirs_and_files(store: Store) -> None:
    for i in range(25):
        store.put_bytes(f"{E}/d/f{i:02}", b"x")
    store.mkdir(f"{E}/d/sub")
    names: list[str] = []
    after = None
    while page := store.listdir(f"{E}/d", after=after, limit=7):
        names += [e.name for e in page]
        after = page[-1].name
    assert names == sorted([f"f{i:02}" for i in range(25)] + ["sub"])
    assert [e.name for e in store.listdir("")] == ["alice"]
    with pytest.raises(errors.NotADirectory):
        store.listdir(f"{E}/d/f00")
    with pytest.raises(errors.NotFound):
        store.listdir(f"{E}/nope")


def test_drop_cache_gives_back_the_pages_of_a_version(store: Store) -> None:
    v = store.put_bytes(f"{E}/ckpt.pt", os.urandom(1 << 20))
    local = store.local_file(v)
    store.drop_cache(v)  # a hint: never an error, whatever the backend
    if local is None:
        return
    with open(local, "rb") as f:
        os.fsync(f.fileno())  # only clean pages can be dropped
        f.read()
    assert resident_pages(local) > 0
    store.drop_cache(v)
    assert resident_pages(local) == 0
    assert store.read_bytes(v) == Path(local).read_bytes()


def test_list_stats_is_listdir_with_only_the_stat_fields(store: Store) -> None:
    for i in range(12):
        store.put_bytes(f"{E}/d/f{i:02}", b"x" * i)
    store.mkdir(f"{E}/d/e-sub")
    store.mkdir(f"{E}/d/z-sub")
    v = store.latest(f"{E}/d/f03")
    store.update(v.id, tags=["t"])  # moves ctime, not mtime
    store.set_attrs(f"{E}/d/f04", mode=0o600)
    for limit in (1, 5, 1000):
        stats: list[Stat] = []
        after = None
        while page := store.list_stats(f"{E}/d", after=after, limit=limit):
            assert len(page) <= limit
            stats += page
            after = page[-1].name
        assert stats == [Stat.of(e) for e in store.listdir(f"{E}/d")]
    # The interface's own version (what a backend without a lean query uses) gives the same rows.
    assert Catalog.list_stats(store.catalog, f"{E}/d", None, 1000) == stats
    by_name = {st.name: st for st in stats}
    assert by_name["e-sub"].is_dir and not by_name["f01"].is_dir
    assert (by_name["f05"].size, by_name["f04"].mode) == (5, 0o600)
    assert by_name["f03"].ctime > by_name["f03"].mtime
    with pytest.raises(errors.NotADirectory):
        store.list_stats(f"{E}/d/f00")
    with pytest.raises(errors.NotFound):
        store.list_stats(f"{E}/nope")


def test_update_changes_metadata_in_place(store: Store) -> None:
    v = store.put_bytes(f"{E}/u.txt", b"1")
    u = store.update(v.id, description="new", tags=["t1", "t2"], metadata={"a": [1, 2]})
    assert u.id == v.id and (u.description, u.tags, u.metadata) == ("new", ("t1", "t2"), {"a": [1, 2]})
    assert len(store.history(f"{E}/u.txt")) == 1
    u2 = store.update(v.id_str, tags=["t3"])
    assert u2.description == "new" and u2.tags == ("t3",)


def test_delete_path_and_version(store: Store) -> None:
    p = f"{E}/x/del.txt"
    v1 = store.put_bytes(p, b"1")
    v2 = store.put_bytes(p, b"2")
    store.wait_uploads()  # remote: deletes of published versions are soft too (pending ones: tests/remote)
    store.delete_version(v2.id)
    assert store.latest(p).id == v1.id
    store.delete(p)
    with pytest.raises(errors.NotFound):
        store.latest(p)
    with pytest.raises(errors.NotFound):
        store.get_version(v1.id)
    with pytest.raises(errors.NotFound):
        store.stat(f"{E}/x")  # an implied prefix goes with its last file
    assert store.gc() == 2
    assert not os.path.exists(os.path.join(store.root, E, "files", "x"))


def test_deleted_since_tells_recent_deletions_of_a_path(store: Store) -> None:
    p, other = f"{E}/x/recent.txt", f"{E}/x/other.txt"
    v1 = store.put_bytes(p, b"1")
    store.put_bytes(p, b"22")
    store.put_bytes(other, b"3")
    before = time.time()
    assert not store.deleted_since(p, before - 60)  # nothing of it was ever deleted
    store.delete_version(v1.id)
    assert store.deleted_since(p, before) and not store.deleted_since(p, time.time() + 1)
    assert not store.deleted_since(other, before)
    store.gc()  # gc forgets deleted versions, and with them when they were deleted
    assert not store.deleted_since(p, before)


def test_mkdir_keeps_its_mode_across_a_reopen_and_implied_parents_get_the_default(store: Store, open_store) -> None:
    store.mkdir(f"{E}/a/private", parents=True, mode=0o700)
    store.mkdir(f"{E}/a/private", exist_ok=True, mode=0o777)  # an existing directory keeps its mode
    again = open_store()
    assert again.stat(f"{E}/a/private").mode == 0o700
    assert again.stat(f"{E}/a").mode == 0o755


def test_paths_over_the_store_path_limit_are_refused_wherever_the_store_is(store: Store) -> None:
    top = f"{E}/" + "/".join(["d" * 200] * 4)  # 818 bytes
    name = "n" * (STORE_PATH_MAX - len(top) - 1)
    store.put_bytes(f"{top}/{name}", b"fits")  # exactly STORE_PATH_MAX bytes
    assert store.read_bytes(store.latest(f"{top}/{name}")) == b"fits"
    for make in (lambda p: store.put_bytes(p, b"x"), lambda p: store.mkdir(p, parents=True),
                 lambda p: store.rename(f"{top}/{name}", p)):
        with pytest.raises(errors.InvalidPath) as e:
            make(f"{top}/{name}x")
        assert e.value.errno == errno.ENAMETOOLONG
    with pytest.raises(errors.InvalidPath) as e:  # the directory fits, a file below it would not
        store.rename(f"{E}/" + "d" * 200, f"{E}/" + "e" * 201)
    assert e.value.errno == errno.ENAMETOOLONG
    assert [v.path for v in store.list(E)] == [f"{top}/{name}"]
    store.rename(f"{E}/" + "d" * 200, f"{E}/" + "e" * 200)  # same length: fine


def test_mkdir_rmdir_and_explicit_dirs_survive_reopen(store: Store, open_store) -> None:
    store.mkdir(f"{E}/empty", parents=True)
    with pytest.raises(errors.AlreadyExists):
        store.mkdir(f"{E}/empty")
    with pytest.raises(errors.NotFound):
        store.mkdir(f"{E}/a/b")
    store.put_bytes(f"{E}/empty/f", b"1")
    with pytest.raises(errors.NotEmpty):
        store.rmdir(f"{E}/empty")
    store.delete(f"{E}/empty/f")
    assert open_store().stat(f"{E}/empty").explicit
    store.rmdir(f"{E}/empty")
    with pytest.raises(errors.NotFound):
        store.rmdir(f"{E}/empty")


def test_rename_file_to_new_name_moves_history(store: Store) -> None:
    a = [store.put_bytes(f"{E}/a.txt", bytes([i])) for i in range(3)]
    store.rename(f"{E}/a.txt", f"{E}/b.txt")
    assert [v.id for v in store.history(f"{E}/b.txt")] == [v.id for v in a]
    with pytest.raises(errors.NotFound):
        store.latest(f"{E}/a.txt")


def test_rename_onto_existing_adds_a_version_without_copying(store: Store) -> None:
    old = store.put_bytes(f"{E}/best.pt", b"old")
    tmp = store.put_bytes(f"{E}/best.pt.tmp", b"new", tags=["t"], metadata={"m": 1}, mtime=1_000_000.0)
    store.rename(f"{E}/best.pt.tmp", f"{E}/best.pt")
    h = store.history(f"{E}/best.pt")
    assert [v.id for v in h][:1] == [old.id] and len(h) == 2
    assert h[-1].key == tmp.key and h[-1].sha256 == tmp.sha256  # same bytes, no copy
    assert (h[-1].tags, h[-1].metadata, h[-1].mtime) == (("t",), {"m": 1}, 1_000_000.0)
    assert store.read_bytes(store.latest(f"{E}/best.pt")) == b"new"
    with pytest.raises(errors.NotFound):
        store.latest(f"{E}/best.pt.tmp")
    store.gc()  # the shared key is still live: nothing is lost
    assert store.read_bytes(store.latest(f"{E}/best.pt")) == b"new"
    with pytest.raises(errors.AlreadyExists):
        store.put_bytes(f"{E}/c", b"c")
        store.rename(f"{E}/c", f"{E}/best.pt", replace=False)


def test_rename_directory_moves_everything_below(store: Store) -> None:
    store.put_bytes(f"{E}/runs/1/a.txt", b"a")
    store.put_bytes(f"{E}/runs/1/deep/b.txt", b"b")
    store.mkdir(f"{E}/runs/1/empty")
    store.rename(f"{E}/runs", f"{E}/old-runs")
    assert sorted(v.path for v in store.list(E)) == [f"{E}/old-runs/1/a.txt", f"{E}/old-runs/1/deep/b.txt"]
    assert store.stat(f"{E}/old-runs/1/empty").explicit
    with pytest.raises(errors.NotFound):
        store.stat(f"{E}/runs")
    store.mkdir(f"{E}/target")
    store.put_bytes(f"{E}/target/x", b"x")
    with pytest.raises(errors.NotEmpty):
        store.rename(f"{E}/old-runs", f"{E}/target")
    with pytest.raises(errors.InvalidPath):
        store.rename(f"{E}/old-runs", f"{E}/old-runs/1/inside")


def test_set_attrs_on_files_and_dirs(store: Store) -> None:
    v = store.put_bytes(f"{E}/t.txt", b"1")
    store.set_attrs(f"{E}/t.txt", mtime=123.0, mode=0o600)
    u = store.latest(f"{E}/t.txt")
    assert (u.id, u.mtime, u.mode) == (v.id, 123.0, 0o600)
    assert store.put_bytes(f"{E}/t.txt", b"2").mode == 0o600  # a new version keeps the mode
    store.set_attrs(E, mtime=5.0)
    assert store.stat(E).mtime == 5.0


@pytest.mark.parametrize(
    "path,error",
    [
        (f"{E}/../x", errors.InvalidPath), (f"{E}/a\0b", errors.InvalidPath), (f"{E}/" + "n" * 256, errors.InvalidPath),
        (f"{E}/./x", errors.InvalidPath), (f"{E}//x", errors.InvalidPath), (f"{E}/.versions/x", errors.InvalidPath),
        (".mldashfs/p/e/x", errors.InvalidPath), ("alice/cv/too-shallow", errors.NotPermitted),
    ],
)
def test_bad_paths_are_refused_and_store_nothing(store: Store, path: str, error: type) -> None:
    with pytest.raises(error) as e:
        store.put_bytes(path, b"x")
    assert str(e.value)
    assert store.list("") == []
    assert os.listdir(store.staging.folder) == []


def test_bad_metadata_is_refused_before_any_byte(store: Store, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidValue, match="JSON"):
        store.put_bytes(f"{E}/m", b"x", metadata={"f": object()})
    with pytest.raises(errors.TooLarge):
        store.put_bytes(f"{E}/m", b"x", metadata={"f": "x" * 70_000})
    with pytest.raises(errors.InvalidValue, match="tag"):
        store.put_bytes(f"{E}/m", b"x", tags=["a,b"])
    with pytest.raises(errors.NotFound, match="source file not found"):
        store.put_file(f"{E}/m", tmp_path / "missing")
    with pytest.raises(errors.NotFound):
        store.get_version("123")
    with pytest.raises(errors.NotFound):
        store.get_version("not-an-id")
    assert store.list("") == []


def test_file_and_directory_conflicts(store: Store) -> None:
    store.put_bytes(f"{E}/f", b"1")
    with pytest.raises(errors.NotADirectory):
        store.put_bytes(f"{E}/f/g", b"1")
    store.mkdir(f"{E}/d")
    with pytest.raises(errors.IsADirectory):
        store.put_bytes(f"{E}/d", b"1")
    with pytest.raises(errors.IsADirectory):
        store.latest(f"{E}/d")
    with pytest.raises(errors.AlreadyExists):
        store.mkdir(f"{E}/f")


def test_another_client_sees_commits_at_once(store: Store, open_store) -> None:
    other = open_store()
    v = store.put_bytes(f"{E}/shared.txt", b"1")
    assert other.latest(f"{E}/shared.txt") == v
    other.put_bytes(f"{E}/shared.txt", b"2")
    assert store.read_bytes(store.latest(f"{E}/shared.txt")) == b"2"


def test_a_commit_is_the_newest_even_when_another_client_took_a_higher_id(store: Store, open_store) -> None:
    """Ids of two clients in one millisecond (or with clocks apart) may order either way; the later
    commit must still become the newest version."""
    other = open_store()
    v = other.put_bytes(f"{E}/race.txt", b"1")
    store._ids = Snowflake(lambda: 0, clock=lambda: timestamp_ms(v.id) - 5)  # a clock behind the other's
    w = store.put_bytes(f"{E}/race.txt", b"2")
    assert w.id > v.id
    assert other.read_bytes(other.latest(f"{E}/race.txt")) == b"2"
    assert [x.id for x in store.history(f"{E}/race.txt")] == [v.id, w.id]


def test_lookup_answers_file_directory_or_nothing(store: Store) -> None:
    v = store.put_bytes(f"{E}/d/f.bin", b"x")
    store.mkdir(f"{E}/empty")
    # The backend's one-query lookup and the interface's default (latest, then get_dir) agree.
    for lookup in (store.catalog.lookup, lambda p: Catalog.lookup(store.catalog, p)):
        assert lookup(f"{E}/d/f.bin") == v
        d = lookup(f"{E}/d")
        assert isinstance(d, Dir) and d.path == f"{E}/d" and not d.explicit
        e = lookup(f"{E}/empty")
        assert isinstance(e, Dir) and e.explicit
        assert lookup(f"{E}/d/missing") is None
        assert isinstance(lookup(""), Dir)
    assert store.latest_or_none(f"{E}/d/missing") is None
    with pytest.raises(errors.IsADirectory):
        store.latest_or_none(f"{E}/d")


def test_a_nowait_commit_takes_small_bytes_and_leaves_the_rest_intact(store: Store) -> None:
    from mldashfs.store import NOWAIT_BYTES

    small = store.stage(None, "s.bin")
    small.write(0, b"abc")
    if store.remote:  # a remote catalog is asked before every commit: nowait never commits
        with pytest.raises(errors.WouldBlock):
            store.commit(f"{E}/s.bin", small, tags=["t"], nowait=True)
        assert store.read_bytes(store.commit(f"{E}/s.bin", small, tags=["t"])) == b"abc"
        return
    v = store.commit(f"{E}/s.bin", small, tags=["t"], nowait=True)
    assert store.read_bytes(v) == b"abc" and v.sha256 == hashlib.sha256(b"abc").hexdigest()
    again = store.stage(v)
    again.write(3, b"d")
    v2 = store.commit(f"{E}/s.bin", again, nowait=True)  # carries the tags over, like a plain commit
    assert store.read_bytes(v2) == b"abcd" and v2.tags == ("t",)
    data = os.urandom(NOWAIT_BYTES + 1)
    big = store.stage(None, "b.bin")
    big.write(0, data)
    with pytest.raises(errors.WouldBlock):
        store.commit(f"{E}/b.bin", big, nowait=True)
    assert store.latest_or_none(f"{E}/b.bin") is None
    v3 = store.commit(f"{E}/b.bin", big)  # the same staged bytes, committed where waiting is fine
    assert store.read_bytes(v3) == data and v3.sha256 == hashlib.sha256(data).hexdigest()


def test_staged_bytes_spill_from_memory_to_a_file(store: Store) -> None:
    from mldashfs.staging import SPILL

    part = os.urandom(SPILL // 2 + 10)
    st = store.stage(None, "big.bin")
    st.write(0, part)
    assert st.in_memory
    st.write(len(part), part)  # crosses SPILL: continues in a staging file, hash kept
    assert not st.in_memory
    st.write(5, b"XX")  # a random write after the spill
    v = store.commit(f"{E}/big.bin", st)
    expect = bytearray(part + part)
    expect[5:7] = b"XX"
    assert store.read_bytes(v) == bytes(expect) and v.sha256 == hashlib.sha256(expect).hexdigest()
    st = store.stage(v)  # a large base is copied to a file; small edits keep working
    st.truncate(SPILL + 5)
    st.write(0, b"head")
    v2 = store.commit(f"{E}/big.bin", st)
    expect2 = b"head" + bytes(expect[4 : SPILL + 5])
    assert store.read_bytes(v2) == expect2 and v2.sha256 == hashlib.sha256(expect2).hexdigest()
    small = store.put_bytes(f"{E}/small.bin", b"abc")
    st = store.stage(small)
    st.fsync()  # durability needs a file: fsync spills
    assert not st.in_memory
    st.write(3, b"d")
    assert store.read_bytes(store.commit(f"{E}/small.bin", st)) == b"abcd"
    assert os.listdir(store.staging.folder) == []


def test_a_symlink_is_a_version_whose_bytes_are_its_target(store: Store) -> None:
    link = store.symlink(f"{E}/latest.pt", "../ckpt/best.pt", tags=["best"])
    again = store.latest(f"{E}/latest.pt")
    assert again == link and again.is_link and again.size == len("../ckpt/best.pt")
    assert store.link_target(again) == "../ckpt/best.pt" and again.content_type == "inode/symlink"
    assert [st.mode for st in store.list_stats(E)] == [link.mode]  # the type survives the catalog
    store.set_attrs(f"{E}/latest.pt", mtime=1_600_000_000, mode=0o600)
    assert store.latest(f"{E}/latest.pt").is_link and store.latest(f"{E}/latest.pt").mtime == 1_600_000_000
    plain = store.put_bytes(f"{E}/latest.pt", b"bytes")  # a file over a link never inherits its mode
    assert not plain.is_link and plain.mode == 0o644
    store.rename(f"{E}/latest.pt", f"{E}/moved.pt")
    assert [v.is_link for v in store.history(f"{E}/moved.pt")] == [True, False]
    with pytest.raises(errors.InvalidValue):
        store.link_target(plain)
    for bad in ("", "a\x00b"):
        with pytest.raises(errors.InvalidValue):
            store.symlink(f"{E}/bad", bad)
