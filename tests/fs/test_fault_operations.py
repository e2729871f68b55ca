"""Faults at the Operations level: a full disk at write or commit, and unexpected errors in handlers."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pyfuse3
import pytest

from mldashfs.errors import NoSpace, ReadOnly, Unavailable
from mldashfs.staging import SPILL, Staged, Staging
from mldashfs.store import Store
from tests.fs.conftest import EXPERIMENT, Driver


def _full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_commit_on_a_full_disk_gets_enospc_at_close_and_stores_nothing(
        fs: Driver, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    fs.write_file("keep.bin", b"old")
    monkeypatch.setattr(store.blobs, "commit_bytes", _full)
    fh, _ = fs.create("new.bin")
    fs("write", fh, 0, b"partial")
    assert fs.errno("flush", fh) == errno.ENOSPC
    assert fs.errno("flush", fh) == errno.ENOSPC  # a dup'ed descriptor's close hears it too
    fs("release", fh)  # commits nothing: no empty version stands in for the lost bytes
    fh = fs.open("keep.bin", os.O_WRONLY | os.O_TRUNC)
    fs("write", fh, 0, b"new bytes")
    assert fs.errno("flush", fh) == errno.ENOSPC
    fs("release", fh)
    monkeypatch.undo()
    assert fs.errno("lookup", pyfuse3.ROOT_INODE, b"new.bin", fs.ctx) == errno.ENOENT
    assert [v.size for v in store.history(f"{EXPERIMENT}/keep.bin")] == [3]
    assert fs.read_file("keep.bin") == b"old"
    fs.write_file("new.bin", b"fits now")  # space is back: the mount works on
    assert fs.read_file("new.bin") == b"fits now"


def test_a_commit_on_a_disk_gone_read_only_gets_erofs_and_reads_work(
        fs: Driver, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    fs.write_file("a.txt", b"hello")

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(store.blobs, "commit_bytes", read_only)
    fh = fs.open("a.txt", os.O_WRONLY | os.O_TRUNC)
    fs("write", fh, 0, b"changed")
    assert fs.errno("flush", fh) == errno.EROFS
    fs("release", fh)
    assert fs.read_file("a.txt") == b"hello"


def test_a_write_on_a_full_disk_fails_that_writer_for_good(
        fs: Driver, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    fh, _ = fs.create("big.bin")
    fs("write", fh, 0, b"x" * 1000)
    monkeypatch.setattr(Staged, "write", _full)
    assert fs.errno("write", fh, 1000, b"y" * 1000) == errno.ENOSPC
    monkeypatch.undo()
    assert fs.errno("write", fh, 1000, b"y" * 1000) == errno.ENOSPC  # no hole in the middle of a file
    assert fs.errno("flush", fh) == errno.ENOSPC
    fs("release", fh)
    assert store.list(EXPERIMENT) == []
    assert os.listdir(store.staging.folder) == []


def test_a_staging_file_that_cannot_be_filled_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staging = Staging(str(tmp_path / "staging"))
    staged = Staged(staging, "model.pt")
    staged.write(0, b"x" * 1000)
    monkeypatch.setattr("mldashfs.staging.write_all", lambda fd: _full)
    with pytest.raises(OSError) as e:
        staged.write(1000, b"y" * SPILL)
    assert e.value.errno == errno.ENOSPC
    assert os.listdir(staging.folder) == []
    monkeypatch.undo()
    staged.write(1000, b"y" * SPILL)  # space is back: the same staged file spills now
    assert staged.finish()[1] == 1000 + SPILL
    staged.discard()
    assert os.listdir(staging.folder) == []


@pytest.mark.parametrize(("code", "error", "errno_"), [(sqlite3.SQLITE_FULL, NoSpace, errno.ENOSPC),
                                                      (sqlite3.SQLITE_READONLY, ReadOnly, errno.EROFS),
                                                      (sqlite3.SQLITE_CORRUPT, Unavailable, errno.EIO)])
def test_a_catalog_write_refused_by_sqlite_keeps_its_cause(store: Store, code: int, error: type, errno_: int) -> None:
    e = sqlite3.OperationalError("refused")
    e.sqlite_errorcode = code  # type: ignore[attr-defined]
    refused = store.catalog._refused(e)  # type: ignore[attr-defined]
    assert type(refused) is error and refused.errno == errno_


def test_an_unexpected_error_in_a_handler_is_eio_with_a_traceback_and_the_next_call_works(
        fs: Driver, store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    fs.write_file("a.bin", b"data")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the store")

    for name in ("latest_or_none", "stat", "listdir", "list_stats", "commit", "update", "delete", "mkdir"):
        monkeypatch.setattr(store, name, broken)
    monkeypatch.setattr(store.catalog, "lookup", broken)
    with caplog.at_level("ERROR", logger="mldashfs.fs"):
        assert fs.errno("lookup", pyfuse3.ROOT_INODE, b"a.bin", fs.ctx) == errno.EIO
        assert fs.errno("create", pyfuse3.ROOT_INODE, b"b.bin", 0o100644, os.O_WRONLY, fs.ctx) == errno.EIO
        assert fs.errno("mkdir", pyfuse3.ROOT_INODE, b"d", 0o755, fs.ctx) == errno.EIO
        assert fs.errno("unlink", pyfuse3.ROOT_INODE, b"a.bin", fs.ctx) == errno.EIO
    assert "RuntimeError: a bug in the store" in caplog.text and "Traceback" in caplog.text
    monkeypatch.undo()
    assert fs.read_file("a.bin") == b"data"
    fs.write_file("b.bin", b"more")
    assert [v.name for v in store.list(EXPERIMENT)] == ["a.bin", "b.bin"]
