"""POSIX details at the Operations level (no mount): open files after unlink, modes and times of
folders, names and paths the store cannot keep."""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3

from mldashfs.paths import STORE_PATH_MAX
from mldashfs.store import Store
from tests.fs.conftest import EXPERIMENT, Driver


def test_a_new_file_unlinked_while_open_keeps_its_bytes_until_release_and_stores_nothing(
    fs: Driver, store: Store
) -> None:
    root = pyfuse3.ROOT_INODE
    fh, ino = fs.create("scratch")
    fs("unlink", root, b"scratch", fs.ctx)
    assert fs("write", fh, 0, b"hello world") == 11
    attr = pyfuse3.EntryAttributes()
    attr.st_size = 5
    out = fs("setattr", ino, attr, fs.setattr_fields(size=True), fh, fs.ctx)
    assert (out.st_size, out.st_nlink) == (5, 0)
    fs("flush", fh)  # the close of a dup'ed descriptor
    assert fs("read", fh, 0, 100) == b"hello"
    a = fs("getattr", ino, fs.ctx)
    assert (a.st_size, a.st_nlink) == (5, 0)
    fs("release", fh)
    assert fs.errno("lookup", root, b"scratch", fs.ctx) == errno.ENOENT
    assert store.list(EXPERIMENT) == []


def test_a_committed_file_unlinked_while_read_keeps_its_attributes_with_no_links(fs: Driver, store: Store) -> None:
    fs.write_file("f", b"bytes")
    ino = fs.ino("f")
    fh = fs.open("f", os.O_RDONLY)
    fs("unlink", pyfuse3.ROOT_INODE, b"f", fs.ctx)
    fs.ops.inodes.invalidate(ino)
    a = fs("getattr", ino, fs.ctx)
    assert (a.st_size, a.st_nlink) == (5, 0)
    assert fs("read", fh, 0, 100) == b"bytes"
    fs("release", fh)


OLD_NS = 1_600_000_000 * 10**9


def test_a_folder_s_times_move_at_once_past_the_daemon_s_attribute_cache(fs: Driver, store: Store) -> None:
    d = fs("mkdir", pyfuse3.ROOT_INODE, b"d", stat.S_IFDIR | 0o755, fs.ctx).st_ino
    attr = pyfuse3.EntryAttributes()
    attr.st_mtime_ns = OLD_NS
    a = fs("setattr", d, attr, fs.setattr_fields(mtime=True), None, fs.ctx)
    assert a.st_mtime_ns == OLD_NS and a.st_ctime_ns > OLD_NS
    assert fs("getattr", d, fs.ctx).st_mtime_ns == OLD_NS  # now in the daemon's attribute cache
    fh, _ = fs.create("d/new")  # no version yet: the catalog does not know
    a = fs("getattr", d, fs.ctx)
    assert a.st_mtime_ns > OLD_NS and a.st_ctime_ns >= a.st_mtime_ns and a.st_nlink == 1
    fs("release", fh)
    fs("setattr", d, attr, fs.setattr_fields(mtime=True), None, fs.ctx)
    fs("unlink", d, b"new", fs.ctx)
    assert fs("getattr", d, fs.ctx).st_mtime_ns > OLD_NS
    listed = dict(fs.listdir(""))
    assert listed["d"].st_mtime_ns > OLD_NS


def test_a_name_that_is_not_utf8_gets_eilseq_from_every_call(fs: Driver) -> None:
    root, bad = pyfuse3.ROOT_INODE, b"bad\xff"
    fs.write_file("good", b"g")
    assert fs.errno("lookup", root, bad, fs.ctx) == errno.EILSEQ
    assert fs.errno("create", root, bad, stat.S_IFREG | 0o644, os.O_WRONLY, fs.ctx) == errno.EILSEQ
    assert fs.errno("mkdir", root, bad, 0o755, fs.ctx) == errno.EILSEQ
    assert fs.errno("rename", root, b"good", root, bad, 0, fs.ctx) == errno.EILSEQ
    assert fs.errno("unlink", root, bad, fs.ctx) == errno.EILSEQ
    assert [name for name, _ in fs.listdir("")] == ["good"]


def test_mkdir_keeps_its_mode(fs: Driver, store: Store) -> None:
    a = fs("mkdir", pyfuse3.ROOT_INODE, b"tmp", stat.S_IFDIR | 0o700, fs.ctx)
    assert stat.S_ISDIR(a.st_mode) and stat.S_IMODE(a.st_mode) == 0o700
    assert store.stat(f"{EXPERIMENT}/tmp").mode == 0o700
    assert stat.S_IMODE(fs.lookup("tmp").st_mode) == 0o700


def test_a_create_whose_store_path_would_be_too_long_gets_enametoolong_at_once(fs: Driver, store: Store) -> None:
    parent = "/".join(["d" * 200] * 4)
    ino = pyfuse3.ROOT_INODE
    for part in parent.split("/"):
        ino = fs("mkdir", ino, part.encode(), stat.S_IFDIR | 0o755, fs.ctx).st_ino
    room = STORE_PATH_MAX - len(f"{EXPERIMENT}/{parent}/")
    assert room < 255  # a name the store path limit refuses, not the name limit
    assert fs.errno("create", ino, b"n" * (room + 1), stat.S_IFREG | 0o644, os.O_WRONLY, fs.ctx) == errno.ENAMETOOLONG
    assert fs.errno("mkdir", ino, b"n" * (room + 1), stat.S_IFDIR | 0o755, fs.ctx) == errno.ENAMETOOLONG
    fh, _ = fs.create(f"{parent}/new")  # open, no version yet: its rename is refused too
    assert fs.errno("rename", ino, b"new", ino, b"n" * (room + 1), 0, fs.ctx) == errno.ENAMETOOLONG
    fs("release", fh)
    fs.write_file(f"{parent}/" + "n" * room, b"fits")
    assert store.read_bytes(store.latest(f"{EXPERIMENT}/{parent}/" + "n" * room)) == b"fits"
