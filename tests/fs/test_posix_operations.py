"""POSIX details at the Operations level (no mount): modes of new folders, names and paths the
store cannot keep."""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3

from mldashfs.paths import STORE_PATH_MAX
from mldashfs.store import Store
from tests.fs.conftest import EXPERIMENT, Driver


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
    fs.write_file(f"{parent}/" + "n" * room, b"fits")
    assert store.read_bytes(store.latest(f"{EXPERIMENT}/{parent}/" + "n" * room)) == b"fits"
