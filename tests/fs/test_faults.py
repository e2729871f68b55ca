"""Faults at the edges, through real mounts: a full disk, a read-only store, private mounts, and
unmounting while files are open."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldashfs.store import Store
from tests.mounting import mounted

EXP = "alice/cv/resnet"
CLI = [sys.executable, "-m", "mldashfs.cli"]


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "8m") -> Iterator[Path]:
    """A small tmpfs mounted at `folder`, unmounted on exit even on failure."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def bind(src: Path, dst: Path) -> Iterator[Path]:
    """`src` bind-mounted at `dst`, unmounted on exit even on failure."""
    dst.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(src), str(dst)], check=True)
    try:
        yield dst
    finally:
        subprocess.run(["umount", "-l", str(dst)], check=False)


def fill(folder: Path) -> Path:
    """Write a file into `folder` until its disk is full; returns the file."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    return filler


def write_error(path: Path, data: bytes) -> int:
    """The errno of writing `data` to `path` (at write or at close); 0 if it worked."""
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        return e.errno or -1
    return 0


def test_a_full_disk_gets_enospc_stores_nothing_and_the_mount_recovers(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        store = disk / "store"
        subprocess.run([*CLI, "init", str(store)], check=True, capture_output=True)
        with mounted(store, tmp_path / "mnt", experiment=EXP) as m:
            (m.path / "keep.bin").write_bytes(b"k" * 5000)
            filler = fill(disk)
            assert write_error(m.path / "small.bin", b"s" * 10_000) == errno.ENOSPC  # at close (commit)
            assert write_error(m.path / "big.bin", os.urandom(3 << 20)) == errno.ENOSPC  # at write (staging)
            assert write_error(m.path / "keep.bin", b"x" * 20_000) == errno.ENOSPC
            assert sorted(os.listdir(m.path)) == ["keep.bin"]
            assert (m.path / "keep.bin").read_bytes() == b"k" * 5000
            assert "Traceback" not in m.log_text()  # a full disk is no bug
            filler.unlink()
            (m.path / "small.bin").write_bytes(b"fits now")
            assert (m.path / "small.bin").read_bytes() == b"fits now"
        assert os.listdir(store / ".mldashfs" / "staging") == []
        with Store.open(store, create=False) as s:
            assert {v.name: v.size for v in s.list(EXP)} == {"keep.bin": 5000, "small.bin": 8}
            assert len(s.history(f"{EXP}/keep.bin")) == 1


def test_the_sdk_on_a_full_disk_raises_nospace_and_stores_nothing(tmp_path: Path) -> None:
    from ml_dash import Experiment
    from ml_dash.errors import NoSpace

    with tmpfs(tmp_path / "disk") as disk:
        exp = Experiment(prefix=EXP, local_path=str(disk / "store"))
        exp.files("models").save_text("ok", to="a.txt")
        filler = fill(disk)
        with pytest.raises(NoSpace) as e:
            exp.files("models").save_blob(b"x" * 100_000, to="b.bin")
        assert e.value.errno == errno.ENOSPC and "b.bin" in str(e.value)
        filler.unlink()
        assert [v.name for v in exp.store.list(EXP)] == ["a.txt"]


def test_a_store_on_a_read_only_filesystem_is_refused_with_one_line(tmp_path: Path) -> None:
    real = tmp_path / "real"
    subprocess.run([*CLI, "init", str(real)], check=True, capture_output=True)
    (tmp_path / "mnt").mkdir()
    with bind(real, tmp_path / "store") as store:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(store)], check=True)
        res = subprocess.run([*CLI, "mount", "--store", str(store), str(tmp_path / "mnt")],
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and not os.path.ismount(tmp_path / "mnt")
    assert res.stderr.strip() == f"mldashfs: cannot open the store at {store}: no read/write access to {store}"


def test_a_read_only_mount_refuses_every_change_and_reads_work(tmp_path: Path) -> None:
    with mounted(tmp_path / "store", tmp_path / "rw", experiment=EXP) as m:
        (m.path / "a.txt").write_text("hello")
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP, extra_args=("--read-only",)) as m:
        assert write_error(m.path / "a.txt", b"x") == errno.EROFS
        for change in (lambda: (m.path / "d").mkdir(), lambda: (m.path / "a.txt").unlink(),
                       lambda: os.setxattr(m.path / "a.txt", "user.epoch", b"3")):
            with pytest.raises(OSError) as e:
                change()
            assert e.value.errno == errno.EROFS
        assert (m.path / "a.txt").read_text() == "hello"
        assert "ro" in mount_options(m.path)
    with Store.open(tmp_path / "store", create=False) as s:
        v = s.latest(f"{EXP}/a.txt")
        assert len(s.history(v.path)) == 1 and v.metadata == {}


def mount_options(path: Path) -> set[str]:
    """The mount and superblock options /proc/self/mountinfo shows for the mount at `path`."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return set(fields[5].split(",")) | set(fields[-1].split(","))
    raise AssertionError(f"{path} is not in /proc/self/mountinfo")


def test_mounts_are_private_unless_allow_other_and_always_check_permissions(tmp_path: Path) -> None:
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP) as m:
        opts = mount_options(m.path)
        assert "default_permissions" in opts and "allow_other" not in opts and "rw" in opts
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP, extra_args=("--allow-other",)) as m:
        assert {"default_permissions", "allow_other"} <= mount_options(m.path)


def test_unmount_with_open_files_is_busy_lazily_detached_and_loses_no_bytes(tmp_path: Path) -> None:
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP) as m:
        f = open(m.path / "open.bin", "wb", buffering=0)
        try:
            f.write(b"before ")
            busy = subprocess.run(["fusermount3", "-u", str(m.path)], capture_output=True, text=True)
            assert busy.returncode != 0 and "busy" in busy.stderr
            refused = subprocess.run([*CLI, "umount", str(m.path)], capture_output=True, text=True)
            assert refused.returncode == 1 and "cannot unmount" in refused.stderr
            subprocess.run(["umount", "-l", str(m.path)], check=True)
            assert not os.path.ismount(m.path)
            f.write(b"after")  # the open file still works
        finally:
            f.close()  # the last close commits; then the daemon sees the unmount and exits
        assert m.proc.wait(timeout=60) == 0
    with Store.open(tmp_path / "store", create=False) as s:
        assert s.read_bytes(s.latest(f"{EXP}/open.bin")) == b"before after"


def test_sigterm_with_a_writer_open_commits_what_it_wrote(tmp_path: Path) -> None:
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP) as m:
        fd = os.open(m.path / "half.bin", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"written before the signal")
            os.kill(m.pid, signal.SIGTERM)
            assert m.proc.wait(timeout=60) == 0  # unmounted: commit_all committed the open writer
        finally:
            with contextlib.suppress(OSError):  # ENOTCONN: the daemon is gone
                os.close(fd)
    with Store.open(tmp_path / "store", create=False) as s:
        assert s.read_bytes(s.latest(f"{EXP}/half.bin")) == b"written before the signal"
