"""Operations-level tests of symbolic links: stored as versions whose bytes are the target."""

from __future__ import annotations

import errno
import hashlib
import os
import stat

import pyfuse3

from mldashfs.store import Store

from .conftest import EXPERIMENT, Driver

ROOT = pyfuse3.ROOT_INODE


def symlink(fs: Driver, path: str, target: bytes) -> pyfuse3.EntryAttributes:
    """symlink(2) of `target` at `path` (relative to the mount root)."""
    parent, _, name = path.rpartition("/")
    return fs("symlink", fs.ino(parent), os.fsencode(name), target, fs.ctx)


def test_a_symlink_is_a_version_whose_bytes_are_its_target(fs: Driver, store: Store) -> None:
    fs("mkdir", ROOT, b"d", 0o755, fs.ctx)
    attr = symlink(fs, "d/latest.pt", b"../ckpt/epoch 3.pt")
    assert stat.S_ISLNK(attr.st_mode) and stat.S_IMODE(attr.st_mode) == 0o777
    assert attr.st_size == len(b"../ckpt/epoch 3.pt")
    assert fs("readlink", attr.st_ino, fs.ctx) == b"../ckpt/epoch 3.pt"
    assert stat.S_ISLNK(fs.lookup("d/latest.pt").st_mode)
    assert fs.lookup("d/latest.pt").st_ino == attr.st_ino
    assert stat.S_ISLNK(fs("getattr", attr.st_ino, fs.ctx).st_mode)
    [(name, listed)] = fs.listdir("d")
    assert name == "latest.pt" and stat.S_ISLNK(listed.st_mode) and listed.st_size == attr.st_size

    v = store.latest(f"{EXPERIMENT}/d/latest.pt")
    assert v.is_link and v.to_dict()["isLink"] and v.content_type == "inode/symlink"
    assert store.link_target(v) == "../ckpt/epoch 3.pt"
    assert v.sha256 == hashlib.sha256(b"../ckpt/epoch 3.pt").hexdigest()
    assert fs.errno("readlink", fs.ino("d"), fs.ctx) == errno.EINVAL


def test_dangling_absolute_and_non_utf8_targets_are_kept_byte_for_byte(fs: Driver, store: Store) -> None:
    for name, target in ((b"abs", b"/nowhere/at/all"), (b"raw", b"caf\xe9"), (b"dots", b"../../..")):
        attr = fs("symlink", ROOT, name, target, fs.ctx)
        assert fs("readlink", attr.st_ino, fs.ctx) == target
    assert store.link_target(store.latest(f"{EXPERIMENT}/raw")) == os.fsdecode(b"caf\xe9")


def test_symlink_refuses_existing_names_versions_and_places_above_experiments(
    fs: Driver, whole_fs: Driver, store: Store
) -> None:
    fs.write_file("f", b"1")
    assert fs.errno("symlink", ROOT, b"f", b"x", fs.ctx) == errno.EEXIST
    assert fs.errno("symlink", fs.ino(".versions"), b"l", b"x", fs.ctx) == errno.EROFS
    assert fs.errno("symlink", ROOT, b"x" * 256, b"x", fs.ctx) == errno.ENAMETOOLONG
    assert whole_fs.errno("symlink", whole_fs.ino("alice/cv"), b"l", b"x", whole_fs.ctx) == errno.EPERM
    assert store.read_bytes(store.latest(f"{EXPERIMENT}/f")) == b"1"


def test_rewriting_a_link_by_rename_makes_a_version_and_versions_lists_each_as_a_link(fs: Driver, store: Store) -> None:
    symlink(fs, "cur", b"run1")
    symlink(fs, "cur.tmp", b"run2")  # what `ln -sfn run2 cur` does
    fs("rename", ROOT, b"cur.tmp", ROOT, b"cur", 0, fs.ctx)
    assert fs("readlink", fs.ino("cur"), fs.ctx) == b"run2"
    history = store.history(f"{EXPERIMENT}/cur")
    assert [store.link_target(v) for v in history] == ["run1", "run2"]
    listed = fs.listdir(".versions/cur")
    assert [n for n, _ in listed] == [v.id_str for v in history]
    assert all(stat.S_ISLNK(a.st_mode) for _, a in listed)
    assert fs("readlink", fs.ino(f".versions/cur/{history[0].id_str}"), fs.ctx) == b"run1"

    fs("unlink", fs.ino(".versions/cur"), history[0].id_str.encode(), fs.ctx)
    assert [v.id for v in store.history(f"{EXPERIMENT}/cur")] == [history[1].id]
    fs("unlink", ROOT, b"cur", fs.ctx)
    assert fs.errno("lookup", ROOT, b"cur", fs.ctx) == errno.ENOENT
    assert [n for n, _ in fs.listdir("")] == []


def test_a_file_renamed_over_a_link_and_back_changes_type_with_the_path(fs: Driver, store: Store) -> None:
    symlink(fs, "x", b"t")
    fs.write_file("f", b"data")
    fs("rename", ROOT, b"f", ROOT, b"x", 0, fs.ctx)
    assert stat.S_ISREG(fs.lookup("x").st_mode) and fs.read_file("x") == b"data"
    assert [v.is_link for v in store.history(f"{EXPERIMENT}/x")] == [True, False]
    symlink(fs, "l", b"elsewhere")
    fs("rename", ROOT, b"l", ROOT, b"x", 0, fs.ctx)
    assert stat.S_ISLNK(fs.lookup("x").st_mode)


def test_a_link_replacing_a_file_elsewhere_gets_a_new_inode(fs: Driver, store: Store) -> None:
    fs.write_file("p", b"plain")
    old = fs.lookup("p")
    assert stat.S_ISREG(old.st_mode)
    store.delete(f"{EXPERIMENT}/p")
    store.symlink(f"{EXPERIMENT}/p", "q")  # by the SDK: the kernel's inode of "p" is a regular file
    fs.ops.inodes.invalidate(old.st_ino)
    kept = fs("getattr", old.st_ino, fs.ctx)
    assert stat.S_ISREG(kept.st_mode)  # never another type for one kernel inode (the kernel says EIO)
    new = fs.lookup("p")
    assert new.st_ino != old.st_ino and stat.S_ISLNK(new.st_mode)
    assert fs("readlink", new.st_ino, fs.ctx) == b"q"


def test_a_file_written_over_a_link_by_the_sdk_is_a_plain_file(store: Store) -> None:
    link = store.symlink(f"{EXPERIMENT}/l", "t", tags=["a"])
    v = store.put_bytes(f"{EXPERIMENT}/l", b"bytes")
    assert not v.is_link and v.mode == 0o644
    assert [x.is_link for x in store.history(f"{EXPERIMENT}/l")] == [True, False]
    assert store.get_version(link.id).tags == ("a",)


def test_link_times_and_metadata_follow_the_rules_of_files(fs: Driver, store: Store) -> None:
    ino = symlink(fs, "l", b"t").st_ino
    attr = pyfuse3.EntryAttributes()
    attr.st_mtime_ns = 1_600_000_000 * 10**9
    attr.st_mode = stat.S_IFLNK | 0o600
    out = fs("setattr", ino, attr, fs.setattr_fields(mtime=True, mode=True), None, fs.ctx)  # lutimes, as rsync -a
    assert out.st_mtime_ns == 1_600_000_000 * 10**9 and out.st_mode == stat.S_IFLNK | 0o777
    v = store.update(store.latest(f"{EXPERIMENT}/l").id, tags=["best"], description="pointer", metadata={"k": 1})
    assert v.is_link and v.tags == ("best",) and store.link_target(v) == "t"
    assert fs("listxattr", ino, fs.ctx) == []  # the kernel refuses user.* xattrs on links itself
    assert fs("readlink", ino, fs.ctx) == b"t"


def test_hard_links_and_special_files_keep_their_errors(fs: Driver) -> None:
    fs.write_file("f", b"1")
    assert fs.errno("link", fs.ino("f"), ROOT, b"g", fs.ctx) == errno.EPERM
    assert fs.errno("mknod", ROOT, b"fifo", stat.S_IFIFO | 0o644, 0, fs.ctx) == errno.EPERM
    assert fs.errno("mknod", ROOT, b"sock", stat.S_IFSOCK | 0o644, 0, fs.ctx) == errno.EPERM
