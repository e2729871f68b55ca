"""What only the SQLite catalog promises: nowait writes never wait for another writer, and the log it
keeps (WAL) is checkpointed by the catalog itself, since no connection does it on its own."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from mldashfs.errors import WouldBlock
from mldashfs.store import Store

E = "alice/cv/resnet"
PAGE = 4096


def test_a_nowait_commit_never_waits_for_another_writer(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        other = sqlite3.connect(tmp_path / "s/.mldashfs/catalog.sqlite", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
            staged = store.stage(None, "f.bin")
            staged.write(0, b"data")
            with pytest.raises(WouldBlock):  # at once: a wait would end in "database is locked" after 60 s
                store.commit(f"{E}/f.bin", staged, nowait=True)
            assert not (tmp_path / "s" / E).exists(), "the bytes placed before the catalog said no stayed"
            other.execute("ROLLBACK")
        finally:
            other.close()
        v = store.commit(f"{E}/f.bin", staged)  # the same staged bytes, hashed once
        assert v.sha256 == hashlib.sha256(b"data").hexdigest() and store.read_bytes(v) == b"data"


def test_the_catalog_checkpoints_its_log_when_commits_skip_it(tmp_path: Path) -> None:
    n = 1200
    with Store.open(tmp_path / "s") as store:
        for i in range(n):  # as the mount commits small files: nowait first, else where waiting is fine
            staged = store.stage(None, "f")
            staged.write(0, b"x")
            try:
                store.commit(f"{E}/f{i}", staged, nowait=True)
            except WouldBlock:
                store.commit(f"{E}/f{i}", staged)
        wal = (tmp_path / "s/.mldashfs/catalog.sqlite-wal").stat().st_size
        assert len(store.list(E)) == n
    # Each new file writes about 7 pages to the log; unchecked, 1,200 of them would leave 8,000+.
    assert wal < 3 * 256 * 8 * PAGE, f"the log grew to {wal} bytes"


def test_a_store_made_with_the_old_listing_index_gets_the_covering_one(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        for i in range(3):
            store.put_bytes(f"{E}/d/f{i}", b"x")
    db = sqlite3.connect(tmp_path / "s/.mldashfs/catalog.sqlite")
    db.executescript("DROP INDEX files_listing; CREATE UNIQUE INDEX files_parent ON files(parent, name);")
    db.close()
    with Store.open(tmp_path / "s") as store:
        indexes = {r[1] for r in store.catalog._conn().execute("PRAGMA index_list(files)")}
        assert "files_listing" in indexes and "files_parent" not in indexes
        assert [st.name for st in store.list_stats(f"{E}/d")] == ["f0", "f1", "f2"]
