"""Operations-level tests: handler methods called directly over a tmp Store (no mount, fast)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import stat
import threading

import pyfuse3
import pytest
import trio

from mldashfs.errors import NotFound
from mldashfs.fs import directories
from mldashfs.records import Dir, Version
from mldashfs.store import Store

from .conftest import EXPERIMENT, Driver


def test_root_is_the_experiment_and_files_written_become_versions(fs: Driver, store: Store) -> None:
    root = fs("getattr", pyfuse3.ROOT_INODE, fs.ctx)
    assert stat.S_ISDIR(root.st_mode)
    assert fs.errno("lookup", pyfuse3.ROOT_INODE, b"missing.pt", fs.ctx) == errno.ENOENT
    fs("mkdir", pyfuse3.ROOT_INODE, b"models", 0o755, fs.ctx)
    fs.write_file("models/best.pt", b"weights-1")
    fs.write_file("models/best.pt", b"weights-2")
    v = store.latest(f"{EXPERIMENT}/models/best.pt")
    assert store.read_bytes(v) == b"weights-2"
    assert v.sha256 == hashlib.sha256(b"weights-2").hexdigest()
    assert len(store.history(f"{EXPERIMENT}/models/best.pt")) == 2
    attr = fs.lookup("models/best.pt")
    assert stat.S_ISREG(attr.st_mode) and stat.S_IMODE(attr.st_mode) == 0o644
    assert attr.st_size == 9 and attr.st_uid == os.getuid()
    assert attr.st_ino == fs.ino("models/best.pt")  # stable per path
    assert fs.read_file("models/best.pt") == b"weights-2"


def test_whole_store_root_shows_namespaces_and_refuses_files_above_experiments(whole_fs: Driver, store: Store) -> None:
    store.put_bytes("alice/cv/resnet/a.txt", b"a")
    assert [n for n, _ in whole_fs.listdir("")] == ["alice"]
    assert whole_fs.read_file("alice/cv/resnet/a.txt") == b"a"
    parent = whole_fs.ino("alice/cv")
    assert whole_fs.errno("create", parent, b"x.txt", stat.S_IFREG | 0o644, os.O_WRONLY, whole_fs.ctx) == errno.EPERM


def test_open_without_truncate_appends_to_a_copy_and_readers_keep_their_version(fs: Driver, store: Store) -> None:
    fs.write_file("log.txt", b"one\n")
    reader = fs("open", fs.ino("log.txt"), os.O_RDONLY, fs.ctx).fh
    fs.write_file("log.txt", b"two\n", flags=os.O_WRONLY | os.O_APPEND)
    assert fs.read_file("log.txt") == b"one\ntwo\n"
    assert fs("read", reader, 0, 100) == b"one\n"  # opened before the second version
    fs("release", reader)
    assert [store.read_bytes(v) for v in store.history(f"{EXPERIMENT}/log.txt")] == [b"one\n", b"one\ntwo\n"]


def test_an_open_that_writes_nothing_makes_no_version_but_create_does(fs: Driver, store: Store) -> None:
    fs.write_file("a.bin", b"x")
    fh = fs("open", fs.ino("a.bin"), os.O_RDWR, fs.ctx).fh
    assert fs("read", fh, 0, 10) == b"x"
    fs("flush", fh)
    fs("release", fh)
    assert len(store.history(f"{EXPERIMENT}/a.bin")) == 1
    fh, _ = fs.create("empty.bin")
    fs("flush", fh)
    fs("release", fh)
    assert store.latest(f"{EXPERIMENT}/empty.bin").size == 0


def test_a_file_being_created_is_visible_before_its_first_close(fs: Driver, store: Store) -> None:
    fh, ino = fs.create("run.log")
    fs("write", fh, 0, b"abc")
    assert fs.lookup("run.log").st_size == 3
    assert "run.log" in [n for n, _ in fs.listdir("")]
    fs("flush", fh)
    fs("write", fh, 3, b"def")  # after a close of a dup: a second version on the next close
    fs("release", fh)
    assert [store.read_bytes(v) for v in store.history(f"{EXPERIMENT}/run.log")] == [b"abc", b"abcdef"]


def test_readdir_pages_through_many_entries_with_attributes(
    fs: Driver, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directories, "PAGE", 40)  # several Store pages with few files
    names = [f"f{i:05d}.txt" for i in range(234)]
    for i, n in enumerate(names):
        store.put_bytes(f"{EXPERIMENT}/many/{n}", b"x" * i, mode=0o600 if i % 2 else None)
    store.mkdir(f"{EXPERIMENT}/many/g-sub")
    pages: list[int] = []
    list_stats = store.list_stats
    monkeypatch.setattr(store, "list_stats", lambda *a, **k: pages.append(len(r := list_stats(*a, **k))) or r)
    listed = fs.listdir("many", batch=97)
    assert pages == [40] * 5 + [35]  # one page at a time, each read once: memory stays flat
    assert [n for n, _ in listed] == [*names, "g-sub"]
    files = listed[:-1]
    assert [a.st_size for _, a in files] == list(range(234))
    assert [stat.S_IMODE(a.st_mode) for _, a in files] == [0o600 if i % 2 else 0o644 for i in range(234)]
    assert len({a.st_ino for _, a in listed}) == 235 and all(stat.S_ISREG(a.st_mode) for _, a in files)
    assert stat.S_ISDIR(listed[-1][1].st_mode) and listed[-1][1].st_nlink == 1
    assert fs.errno("opendir", fs.ino("many/f00000.txt"), fs.ctx) == errno.ENOTDIR


def _readdir_as_served(fs: Driver, fh: int, start: int, room: int) -> list[tuple[str, int, int]]:
    """One readdir into a buffer of `room` entries, as the daemon serves it: with a nursery for the
    read-ahead it starts, which ends before this returns. Returns (name, size, inode) per entry."""
    taken: list[tuple[str, int, int]] = []

    def reply(token: object, name: bytes, attr: pyfuse3.EntryAttributes, next_id: int) -> bool:
        if len(taken) == room:
            return False
        taken.append((os.fsdecode(name), attr.st_size, attr.st_ino))
        return True

    failed: list[pyfuse3.FUSEError] = []

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            fs.ops.background = nursery
            try:
                await fs.ops.readdir(fh, start, None)
            except pyfuse3.FUSEError as e:  # raised here, it would reach the caller in an ExceptionGroup
                failed.append(e)
        fs.ops.background = None

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pyfuse3, "readdir_reply", reply)
        trio.run(serve)
    if failed:
        raise failed[0]
    return taken


def _counting_pages(store: Store, monkeypatch: pytest.MonkeyPatch, fail: list[bool]) -> list[int]:
    """Rows of each `list_stats` page read from `store` from now on; a read fails while `fail[0]`."""
    pages: list[int] = []
    list_stats = store.list_stats

    def counted(*args: object, **kwargs: object) -> list[object]:
        if fail[0]:
            raise sqlite3.OperationalError("disk I/O error")
        rows = list_stats(*args, **kwargs)  # type: ignore[arg-type]
        pages.append(len(rows))
        return rows

    monkeypatch.setattr(store, "list_stats", counted)
    return pages


def test_while_the_kernel_takes_in_a_full_reply_the_next_rows_are_read_ahead_once(
    fs: Driver, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directories, "PAGE", 40)
    sizes = {f"f{i:03d}": i for i in range(150)}
    for name, size in sizes.items():
        store.put_bytes(f"{EXPERIMENT}/many/{name}", b"x" * size)
    pages = _counting_pages(store, monkeypatch, [False])
    fh = fs("opendir", fs.ino("many"), fs.ctx)
    listed: list[tuple[str, int, int]] = []
    read_by_requests = []
    for _ in range(6):
        before = len(pages)
        listed += _readdir_as_served(fs, fh, len(listed), 30)  # the kernel's buffer holds 30 entries
        read_by_requests.append(len(pages) - before)
    fs("releasedir", fh)
    assert [name for name, _, _ in listed] == sorted(sizes)
    assert {name: size for name, size, _ in listed} == sizes and len({ino for *_, ino in listed}) == 150
    assert pages == [40, 40, 40, 30]  # each page read once
    assert read_by_requests[:2] == [2, 1]  # the first request's page and its read-ahead, then one ahead


def test_a_failed_read_ahead_fails_only_the_readdir_that_needs_it(
    fs: Driver, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directories, "PAGE", 40)
    names = [f"f{i:03d}" for i in range(100)]
    for name in names:
        store.put_bytes(f"{EXPERIMENT}/many/{name}", name.encode())
    fail = [False]
    _counting_pages(store, monkeypatch, fail)
    fh = fs("opendir", fs.ino("many"), fs.ctx)
    first = _readdir_as_served(fs, fh, 0, 30)  # reads rows 0-39; the read-ahead, rows 40-79
    fail[0] = True
    second = _readdir_as_served(fs, fh, 30, 30)  # served from them; its read-ahead (80-99) fails, logged
    with pytest.raises(pyfuse3.FUSEError) as e:
        _readdir_as_served(fs, fh, 60, 30)  # needs rows 80-99: reads them itself, and fails alone
    assert e.value.errno == errno.EIO
    fail[0] = False
    rest = _readdir_as_served(fs, fh, 60, 30) + _readdir_as_served(fs, fh, 90, 30)
    assert _readdir_as_served(fs, fh, 100, 30) == []
    fs("releasedir", fh)
    assert [n for n, _, _ in first + second + rest] == names


def test_the_kernels_forgets_empty_the_inode_table_and_numbers_are_never_reused(fs: Driver, store: Store) -> None:
    for i in range(30):
        store.put_bytes(f"{EXPERIMENT}/many/f{i:02d}", b"x" * i)
    table = fs.ops.inodes
    first = {name: a.st_ino for name, a in fs.listdir("many", batch=7)}
    assert all(table.path(ino) == f"{EXPERIMENT}/many/{name}" for name, ino in first.items())
    held = len(table.paths)
    fs("forget", [(ino, 1) for ino in first.values()])  # readdirplus gave one reference per entry
    assert len(table.paths) == held - 30
    assert not any(f"{EXPERIMENT}/many/{name}" in table.inodes for name in first)
    again = {name: a.st_ino for name, a in fs.listdir("many")}
    assert again.keys() == first.keys() and not set(again.values()) & set(first.values())
    fs("forget", [(ino, 1) for ino in again.values()])

    fh = fs("opendir", fs.ino("many"), fs.ctx)
    offered: list[int] = []

    def full_after_two(token: object, name: bytes, attr: pyfuse3.EntryAttributes, next_id: int) -> bool:
        offered.append(attr.st_ino)
        return len(offered) <= 2

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pyfuse3, "readdir_reply", full_after_two)
        fs("readdir", fh, 0, None)
    fs("releasedir", fh)
    fs("forget", [(ino, 1) for ino in offered[:2]])
    fs("unlink", fs.ino("many"), b"f02", fs.ctx)
    assert offered[2] not in table.paths  # offered but never taken: the kernel will never forget it

    kept = fs.lookup("many/f05")  # a second reference to f05
    fs("rename", fs.ino(""), b"many", fs.ino(""), b"moved", 0, fs.ctx)
    assert table.path(kept.st_ino) == f"{EXPERIMENT}/moved/f05"  # renaming a folder moves its inodes
    fs("unlink", fs.ino("moved"), b"f05", fs.ctx)
    assert table.path(kept.st_ino) is None  # detached: still answers the kernel's references
    assert fs("getattr", kept.st_ino, fs.ctx).st_size == 5
    fs("forget", [(kept.st_ino, 2)])
    assert kept.st_ino not in table.paths
    assert fs.errno("getattr", kept.st_ino, fs.ctx) == errno.ENOENT


def test_versions_view_lists_reads_and_removes_versions(fs: Driver, store: Store) -> None:
    for data in (b"v1", b"v2", b"v3"):
        fs.write_file("ckpt.pt", data)
    ids = [v.id_str for v in store.history(f"{EXPERIMENT}/ckpt.pt")]
    assert ".versions" not in [n for n, _ in fs.listdir("")]
    assert [n for n, _ in fs.listdir(".versions")] == ["ckpt.pt"]
    listed = fs.listdir(".versions/ckpt.pt")
    assert [n for n, _ in listed] == ids
    assert all(stat.S_IMODE(a.st_mode) == 0o444 for _, a in listed)
    assert fs.read_file(f".versions/ckpt.pt/{ids[0]}") == b"v1"
    version_ino = fs.ino(f".versions/ckpt.pt/{ids[0]}")
    assert fs("getxattr", version_ino, b"user.mldash.id", fs.ctx) == ids[0].encode()
    assert fs.errno("open", version_ino, os.O_WRONLY, fs.ctx) == errno.EROFS
    fs("unlink", fs.ino(".versions/ckpt.pt"), ids[0].encode(), fs.ctx)
    assert [v.id_str for v in store.history(f"{EXPERIMENT}/ckpt.pt")] == ids[1:]
    assert fs.errno("lookup", fs.ino(".versions/ckpt.pt"), b"123", fs.ctx) == errno.ENOENT
    assert fs.errno("lookup", fs.ino(".versions"), b"nothing.pt", fs.ctx) == errno.ENOENT


def test_xattrs_map_to_tags_description_and_metadata(fs: Driver, store: Store) -> None:
    fs.write_file("best.pt", b"w")
    ino = fs.ino("best.pt")
    v = store.latest(f"{EXPERIMENT}/best.pt")
    assert fs("getxattr", ino, b"user.mldash.checksum", fs.ctx) == v.sha256.encode()
    assert fs.errno("getxattr", ino, b"user.mldash.tags", fs.ctx) == errno.ENODATA
    fs("setxattr", ino, b"user.mldash.tags", b"best, final", fs.ctx)
    fs("setxattr", ino, b"user.xdg.comment", b"top-1 76%", fs.ctx)
    fs("setxattr", ino, b"user.epoch", b"50", fs.ctx)
    v2 = store.latest(f"{EXPERIMENT}/best.pt")
    assert v2.id == v.id  # updated in place, no new version
    assert v2.tags == ("best", "final") and v2.description == "top-1 76%" and v2.metadata == {"epoch": "50"}
    assert fs("getxattr", ino, b"user.xdg.tags", fs.ctx) == b"best,final"
    assert json.loads(fs("getxattr", ino, b"user.mldash.metadata", fs.ctx)) == {"epoch": "50"}
    names = set(fs("listxattr", ino, fs.ctx))
    assert {b"user.mldash.id", b"user.mldash.checksum", b"user.mldash.tags", b"user.mldash.description",
            b"user.epoch"} <= names and b"user.mldash.metadata" not in names
    fs("removexattr", ino, b"user.mldash.id", fs.ctx)  # accepted, changes nothing (rsync -X prunes so)
    assert fs("getxattr", ino, b"user.mldash.id", fs.ctx) == v.id_str.encode()
    fs("removexattr", ino, b"user.epoch", fs.ctx)
    assert fs.errno("getxattr", ino, b"user.epoch", fs.ctx) == errno.ENODATA
    assert fs.errno("removexattr", ino, b"user.epoch", fs.ctx) == errno.ENODATA
    assert fs.errno("setxattr", ino, b"user.mldash.metadata", b"[1, 2]", fs.ctx) == errno.EINVAL
    assert fs.errno("setxattr", ino, b"user.mldash.metadata", b"not json", fs.ctx) == errno.EINVAL
    assert fs.errno("setxattr", ino, b"user.big", b"x" * (65 * 1024), fs.ctx) == errno.E2BIG
    assert fs.errno("setxattr", ino, b"user.mldash.id", b"1", fs.ctx) == errno.ENOTSUP
    assert fs.errno("setxattr", ino, b"trusted.x", b"1", fs.ctx) == errno.ENOTSUP
    assert fs.errno("getxattr", ino, b"security.selinux", fs.ctx) == errno.ENOTSUP
    assert fs.errno("getxattr", ino, b"system.posix_acl_access", fs.ctx) == errno.ENOTSUP
    assert store.latest(f"{EXPERIMENT}/best.pt").tags == ("best", "final")  # bad values changed nothing


def test_xattrs_set_on_an_open_new_file_land_on_its_first_version(fs: Driver, store: Store) -> None:
    fh, ino = fs.create("copy.bin")
    fs("write", fh, 0, b"data")
    fs("setxattr", ino, b"user.source", b"cp -a", fs.ctx)
    assert fs("getxattr", ino, b"user.source", fs.ctx) == b"cp -a"
    fs("flush", fh)
    fs("release", fh)
    assert store.latest(f"{EXPERIMENT}/copy.bin").metadata == {"source": "cp -a"}


def test_rename_replaces_keeps_history_and_supports_noreplace(fs: Driver, store: Store) -> None:
    fs.write_file("model.pt", b"old")
    fs.write_file("model.pt.tmp", b"new")
    root = pyfuse3.ROOT_INODE
    assert fs.errno("rename", root, b"model.pt.tmp", root, b"model.pt", pyfuse3.RENAME_NOREPLACE, fs.ctx) == errno.EEXIST
    assert fs.errno("rename", root, b"model.pt.tmp", root, b"model.pt", pyfuse3.RENAME_EXCHANGE, fs.ctx) == errno.EINVAL
    fs("rename", root, b"model.pt.tmp", root, b"model.pt", 0, fs.ctx)
    assert fs.errno("lookup", root, b"model.pt.tmp", fs.ctx) == errno.ENOENT
    assert fs.read_file("model.pt") == b"new"
    assert [store.read_bytes(v) for v in store.history(f"{EXPERIMENT}/model.pt")] == [b"old", b"new"]
    fs("mkdir", root, b"runs", 0o755, fs.ctx)
    fs.write_file("runs/a.txt", b"a")
    fs("rename", root, b"runs", root, b"archive", 0, fs.ctx)
    assert fs.read_file("archive/a.txt") == b"a"
    assert fs.errno("lookup", root, b"runs", fs.ctx) == errno.ENOENT


def test_unlink_rmdir_and_their_errnos(fs: Driver, store: Store) -> None:
    root = pyfuse3.ROOT_INODE
    fs("mkdir", root, b"d", 0o755, fs.ctx)
    fs.write_file("d/x", b"x")
    assert fs.errno("rmdir", root, b"d", fs.ctx) == errno.ENOTEMPTY
    assert fs.errno("unlink", root, b"d", fs.ctx) == errno.EISDIR
    fs("unlink", fs.ino("d"), b"x", fs.ctx)
    assert fs.errno("lookup", fs.ino("d"), b"x", fs.ctx) == errno.ENOENT
    fs("rmdir", root, b"d", fs.ctx)
    assert fs.errno("lookup", root, b"d", fs.ctx) == errno.ENOENT
    assert fs.errno("unlink", root, b"d", fs.ctx) == errno.ENOENT


def test_bad_names_and_unsupported_operations_give_clear_errnos(fs: Driver) -> None:
    root = pyfuse3.ROOT_INODE
    assert fs.errno("lookup", root, b"x" * 256, fs.ctx) == errno.ENAMETOOLONG
    assert fs.errno("mkdir", root, b"y" * 256, 0o755, fs.ctx) == errno.ENAMETOOLONG
    assert fs.errno("create", fs.ino(".versions"), b"a", stat.S_IFREG | 0o644, os.O_WRONLY, fs.ctx) == errno.EROFS
    assert fs.errno("mknod", root, b"fifo", stat.S_IFIFO | 0o644, 0, fs.ctx) == errno.EPERM
    fs.write_file("f", b"1")
    assert fs.errno("link", fs.ino("f"), root, b"g", fs.ctx) == errno.EPERM


def test_setattr_truncates_sets_mtime_mode_and_refuses_owner_changes(fs: Driver, store: Store) -> None:
    fs.write_file("t.bin", b"0123456789")
    ino = fs.ino("t.bin")
    attr = pyfuse3.EntryAttributes()
    attr.st_size = 4
    fs("setattr", ino, attr, fs.setattr_fields(size=True), None, fs.ctx)
    assert fs.read_file("t.bin") == b"0123"
    assert len(store.history(f"{EXPERIMENT}/t.bin")) == 2
    attr.st_mtime_ns = 1_600_000_000 * 10**9
    attr.st_mode = stat.S_IFREG | 0o600
    out = fs("setattr", ino, attr, fs.setattr_fields(mtime=True, mode=True), None, fs.ctx)
    assert out.st_mtime_ns == 1_600_000_000 * 10**9 and stat.S_IMODE(out.st_mode) == 0o600
    v = store.latest(f"{EXPERIMENT}/t.bin")
    assert v.mtime == 1_600_000_000 and v.mode == 0o600
    attr.st_uid = os.getuid() + 1
    assert fs.errno("setattr", ino, attr, fs.setattr_fields(uid=True), None, fs.ctx) == errno.EPERM
    attr.st_uid = os.getuid()
    fs("setattr", ino, attr, fs.setattr_fields(uid=True), None, fs.ctx)


def test_ftruncate_through_an_open_handle_is_one_version(fs: Driver, store: Store) -> None:
    fs.write_file("f.bin", b"abcdef")
    ino = fs.ino("f.bin")
    fh = fs("open", ino, os.O_RDWR, fs.ctx).fh
    attr = pyfuse3.EntryAttributes()
    attr.st_size = 2
    fs("setattr", ino, attr, fs.setattr_fields(size=True), fh, fs.ctx)
    fs("write", fh, 2, b"XY")
    fs("flush", fh)
    fs("release", fh)
    assert [store.read_bytes(v) for v in store.history(f"{EXPERIMENT}/f.bin")] == [b"abcdef", b"abXY"]


def test_unlinking_a_file_while_it_is_written_stores_nothing(fs: Driver, store: Store) -> None:
    fh, _ = fs.create("gone.bin")
    fs("write", fh, 0, b"bytes")
    fs("unlink", pyfuse3.ROOT_INODE, b"gone.bin", fs.ctx)
    fs("flush", fh)
    fs("release", fh)
    assert fs.errno("lookup", pyfuse3.ROOT_INODE, b"gone.bin", fs.ctx) == errno.ENOENT
    assert store.list(EXPERIMENT) == []


def test_statfs_reports_the_store_disk(fs: Driver, store: Store) -> None:
    s = fs("statfs", fs.ctx)
    disk = os.statvfs(store.root)
    assert s.f_bsize == disk.f_bsize and s.f_blocks == disk.f_blocks and s.f_namemax == 255


def test_changes_made_by_the_sdk_show_up_after_the_attribute_cache_expires(
    fs: Driver, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs.write_file("shared.txt", b"from mount")
    assert fs.lookup("shared.txt").st_size == 10
    store.put_bytes(f"{EXPERIMENT}/shared.txt", b"from the sdk!")
    store.put_bytes(f"{EXPERIMENT}/new.txt", b"new")
    assert fs.read_file("new.txt") == b"new"  # lookups are never cached negatively
    monkeypatch.setattr(fs.ops.inodes, "attr_ttl", 0.0)
    fs.ops.inodes.invalidate(fs.ino("shared.txt"))
    assert fs("getattr", fs.ino("shared.txt"), fs.ctx).st_size == 13
    assert fs.read_file("shared.txt") == b"from the sdk!"


@pytest.mark.parametrize("handler", ["lookup", "getattr"])
def test_a_file_whose_first_commit_lands_while_it_is_looked_up_is_never_missing(
        fs: Driver, store: Store, monkeypatch: pytest.MonkeyPatch, handler: str) -> None:
    """A remote store answers in a worker thread: the answer "no such file" may predate a commit that
    lands before the handler looks at the file's writer (found by load_memory.py --remote: `ls -l` of
    a folder being written could not stat a file it had listed)."""
    fh, ino = fs.create("run.log")
    fs("write", fh, 0, b"abc")
    parent = fs.ino("")
    monkeypatch.setattr(Store, "remote", property(lambda self: True))  # store calls go to a thread
    answered, commit_landed = threading.Event(), threading.Event()
    resolve = fs.ops.tree.resolve

    def answer_before_the_commit(path: str) -> Version | Dir:
        try:
            return resolve(path)
        except NotFound:
            answered.set()
            commit_landed.wait(10)
            raise

    monkeypatch.setattr(fs.ops.tree, "resolve", answer_before_the_commit)
    got: list[pyfuse3.EntryAttributes] = []

    async def race() -> None:
        async def ask() -> None:
            if handler == "lookup":
                got.append(await fs.ops.lookup(parent, b"run.log", fs.ctx))
            else:
                got.append(await fs.ops.getattr(ino, fs.ctx))

        async with trio.open_nursery() as n:
            n.start_soon(ask)
            await trio.to_thread.run_sync(answered.wait, 10)
            await fs.ops.flush(fh)  # the first version: the writer holds no uncommitted bytes now
            commit_landed.set()

    fs.ops.inodes.invalidate(ino)  # getattr asks the store, not its cache
    trio.run(race)
    assert got[0].st_ino == ino and got[0].st_size == 3
    fs("release", fh)
    assert store.read_bytes(store.latest(f"{EXPERIMENT}/run.log")) == b"abc"
