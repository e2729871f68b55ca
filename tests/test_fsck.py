"""`mldashfs fsck` on local stores, run as a user would (subprocesses of the console script)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldashfs.store import Store
from tests.test_cli import cli

EXP = "alice/cv/resnet"
OLD = 1_000_000_000  # 2001: older than any safety age, and than any process


@pytest.fixture
def work() -> Iterator[Path]:
    """A scratch folder holding the store (`store/`); removed even on failure."""
    d = Path(tempfile.mkdtemp(prefix="mldashfs-fsck-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fsck(work: Path, *args: str, rc: int) -> subprocess.CompletedProcess[str]:
    return cli(work, "fsck", *args, rc=rc)


def report(work: Path, *args: str, rc: int) -> dict:
    return json.loads(fsck(work, "--json", *args, rc=rc).stdout)


def make_store(work: Path) -> Store:
    """A store with two versions of one file and one other file."""
    s = Store.open(work / "store", create=True)
    s.put_bytes(f"{EXP}/models/best.pt", b"first")
    s.put_bytes(f"{EXP}/models/best.pt", b"second")
    s.put_bytes(f"{EXP}/plots/loss.png", b"png bytes" * 100)
    return s


def test_clean_store_is_clean(work: Path) -> None:
    make_store(work).close()
    r = report(work, "--verify", rc=0)
    assert r["status"] == 0 and r["problems"] == []
    assert r["checked"]["versions"] == 3 and r["checked"]["verified_bytes"] == 5 + 6 + 900
    assert "clean" in fsck(work, rc=0).stdout


def test_missing_blob_is_damage_and_named(work: Path) -> None:
    s = make_store(work)
    v = s.history(f"{EXP}/models/best.pt")[0]  # an old version: history needs its bytes too
    s.close()
    os.unlink(work / "store" / v.key)
    r = report(work, "--repair", rc=2)
    assert [(p["kind"], p["subject"], p["repaired"]) for p in r["problems"]] == \
        [("missing", f"{EXP}/models/best.pt", False)]
    assert str(v.id) in r["problems"][0]["detail"]


def test_orphan_blob_is_removed_by_repair(work: Path) -> None:
    make_store(work).close()
    # the crash between steps 2 and 3 of a commit: bytes at a key no catalog row names
    key = f"{EXP}/files/models/917000000000000000/best.pt"
    orphan = work / "store" / key
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"never committed")
    young = report(work, rc=0)  # a commit in flight looks the same until it is old
    assert young["checked"]["young_orphans"] == 1
    os.utime(orphan, (OLD, OLD))
    r = report(work, rc=2)
    assert [(p["kind"], p["subject"]) for p in r["problems"]] == [("orphan", key)]
    assert orphan.exists()  # only --repair removes
    r = report(work, "--repair", rc=1)
    assert r["problems"][0]["repaired"] and not orphan.exists() and not orphan.parent.exists()
    report(work, "--verify", rc=0)
    with Store.open(work / "store", create=False) as s:
        assert s.read_bytes(s.latest(f"{EXP}/models/best.pt")) == b"second"


def test_flipped_byte_is_found_only_by_verify(work: Path) -> None:
    s = make_store(work)
    v = s.latest(f"{EXP}/plots/loss.png")
    s.close()
    blob = work / "store" / v.key
    data = bytearray(blob.read_bytes())
    data[10] ^= 0xFF
    blob.write_bytes(bytes(data))
    report(work, rc=0)
    r = report(work, "--verify", "--repair", rc=2)
    assert [(p["kind"], p["subject"], p["repaired"]) for p in r["problems"]] == \
        [("corrupt", f"{EXP}/plots/loss.png", False)]
    assert v.sha256 in r["problems"][0]["detail"]


def test_staging_leftovers_are_found_and_removed(work: Path) -> None:
    make_store(work).close()
    staging = work / "store/.mldashfs/staging"
    # pid 1 is alive but younger than this file: a reboot reused the pid of the crashed writer
    reused = staging / "1-0123456789abcdef.pt"
    unnamed = staging / "stray"
    for f in (reused, unnamed):
        f.write_bytes(b"partial")
        os.utime(f, (OLD, OLD))
    r = report(work, rc=2)
    assert sorted((p["kind"], p["subject"]) for p in r["problems"]) == \
        [("staging", str(reused)), ("staging", str(unnamed))]
    report(work, "--repair", rc=1)
    assert not reused.exists() and not unnamed.exists()
    report(work, rc=0)


def test_catalog_pointer_is_repaired(work: Path) -> None:
    s = make_store(work)
    first, second = s.history(f"{EXP}/models/best.pt")
    s.close()
    db = sqlite3.connect(work / "store/.mldashfs/catalog.sqlite")  # a damaged catalog, by hand
    with db:
        db.execute("UPDATE files SET latest=? WHERE path=?", (first.id, f"{EXP}/models/best.pt"))
        db.execute("INSERT INTO dirs(path, parent, name, explicit, mtime, mode) VALUES (?,?,?,0,0,493)",
                   (f"{EXP}/empty", EXP, "empty"))
    db.close()
    r = report(work, rc=2)
    assert sorted(p["detail"] for p in r["problems"]) == [f"empty: {EXP}/empty", f"stale: {EXP}/models/best.pt"]
    report(work, "--repair", rc=1)
    report(work, rc=0)
    with Store.open(work / "store", create=False) as s:
        assert s.latest(f"{EXP}/models/best.pt").id == second.id


def test_open_and_usage_errors_exit_3(work: Path) -> None:
    assert "no store" in fsck(work, rc=3).stderr
    make_store(work).close()
    fsck(work, "--min-age", "soon", rc=3)
