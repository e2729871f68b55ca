"""Kernel FUSE passthrough through a real mount: the kernel reads blobs itself, and every way of
opening a file around it (new versions, writers, mmap of a direct-I/O handle) still works.

These tests run as root with a kernel that has CONFIG_FUSE_PASSTHROUGH (CI's machines): a mount
that falls back to the daemon fails them, loudly, rather than skipping.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldashfs.fs.attributes import VISIBILITY_DELAY
from mldashfs.store import Store
from tests.mounting import Mount, mounted

EXP = "alice/cv/resnet"


@pytest.fixture
def mnt(tmp_path: Path) -> Iterator[Mount]:
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP) as m:
        yield m


@pytest.fixture(params=["passthrough", "no-passthrough"])
def either(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mount]:
    """A mount with kernel passthrough, and one that serves reads through the daemon."""
    extra = ("--no-passthrough",) if request.param == "no-passthrough" else ()
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP, extra_args=extra) as m:
        yield m


def test_the_mount_reports_passthrough_and_no_passthrough_turns_it_off(mnt: Mount, tmp_path: Path) -> None:
    (mnt.path / "a.bin").write_bytes(b"a" * 100_000)
    assert (mnt.path / "a.bin").read_bytes() == b"a" * 100_000
    assert "reads: kernel passthrough to the blobs" in mnt.log_text()
    with mounted(tmp_path / "store", tmp_path / "mnt2", experiment=EXP, extra_args=("--no-passthrough",)) as m2:
        assert (m2.path / "a.bin").read_bytes() == b"a" * 100_000
        assert "reads: through the daemon and the mount's page cache" in m2.log_text()


def test_reads_mmap_and_close_are_served_by_the_kernel_while_the_daemon_is_stopped(mnt: Mount) -> None:
    """Once open, a reader's read(), mmap() and close() never ask the daemon: they work even with
    the daemon stopped (SIGSTOP), which would hang any request the daemon had to answer."""
    data = os.urandom(8 << 20)
    f = mnt.path / "ckpt.bin"
    f.write_bytes(data)
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import hashlib, mmap, os, sys
        fd = os.open({str(f)!r}, os.O_RDONLY)
        m = mmap.mmap(fd, {len(data)}, prot=mmap.PROT_READ)
        print("open", flush=True)
        sys.stdin.readline()
        chunks = iter(lambda: os.read(fd, 1 << 20), b"")
        got = hashlib.sha256(b"".join(chunks)).hexdigest(), hashlib.sha256(m[:]).hexdigest()
        m.close()
        os.close(fd)
        print(*got, flush=True)
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdin is not None
    try:
        assert reader.stdout.readline().strip() == "open"
        os.kill(mnt.pid, signal.SIGSTOP)
        try:
            reader.stdin.write("go\n")
            reader.stdin.flush()
            ready, _, _ = select.select([reader.stdout], [], [], 30)
            out = reader.stdout.readline() if ready else "(no answer within 30 s)"
        finally:
            os.kill(mnt.pid, signal.SIGCONT)
    finally:
        if reader.poll() is None:
            reader.kill()
        reader.wait()
    want = hashlib.sha256(data).hexdigest()
    assert out.split() == [want, want]


def test_an_old_versions_reader_stays_open_while_new_readers_get_the_new_version(either: Mount) -> None:
    """A reader keeps its version open across a save by the SDK; readers opened afterwards read the
    new version (the kernel allows one blob per inode, so the path moves to a new inode)."""
    f = either.path / "weights.bin"
    old, new = b"O" * (3 << 20), b"N" * (1 << 20)
    f.write_bytes(old)
    with open(f, "rb") as first:
        head = first.read(1 << 20)
        with Store.open(either.store) as s:
            s.put_bytes(f"{EXP}/weights.bin", new)
        time.sleep(VISIBILITY_DELAY)
        with open(f, "rb") as second, open(f, "rb") as third:
            assert second.read() == new and third.read() == new
        assert head + first.read() == old
    assert f.read_bytes() == new


def test_a_reader_mmapped_during_a_write_keeps_its_version_after_it(either: Mount) -> None:
    """A reader opened while a writer has the file open reads through the daemon (direct I/O), and
    its mmap faults pages into the inode's page cache. Readers opened after the write read the new
    version, and the mapping keeps showing the old one."""
    f = either.path / "table.npy"
    old, new = b"1" * (1 << 20), b"2" * (1 << 20)
    f.write_bytes(old)
    with open(f, "r+b") as w:
        with open(f, "rb") as early:
            mapped = mmap.mmap(early.fileno(), len(old), flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
            try:
                assert mapped[:] == old
                w.write(new)
                w.close()
                assert f.read_bytes() == new
                with open(f, "rb") as later:
                    assert later.read() == new
                assert mapped[:] == old
            finally:
                mapped.close()
    assert f.read_bytes() == new


def test_dd_with_o_direct_reads_a_file(either: Mount) -> None:
    data = os.urandom(4 << 20)
    (either.path / "raw.bin").write_bytes(data)
    out = either.path.parent / "raw.copy"
    subprocess.run(["dd", f"if={either.path / 'raw.bin'}", f"of={out}", "bs=1M", "iflag=direct", "status=none"],
                   check=True, timeout=60)
    assert out.read_bytes() == data


def test_overlayfs_stacks_on_the_mount_only_without_passthrough(tmp_path: Path) -> None:
    """A passthrough mount counts as two stacked filesystems, the most Linux allows, so overlayfs
    refuses it as a lower layer; `--no-passthrough` is the way to stack one (README)."""
    def overlay(lower: Path, name: str) -> subprocess.CompletedProcess[str]:
        up, work, merged = (tmp_path / name / d for d in ("up", "work", "merged"))
        for d in (up, work, merged):
            d.mkdir(parents=True)
        return subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                               f"lowerdir={lower},upperdir={up},workdir={work}", str(merged)],
                              capture_output=True, text=True, timeout=30)

    for extra, name in (((), "pt"), (("--no-passthrough",), "nopt")):
        with mounted(tmp_path / "store", tmp_path / f"mnt-{name}", experiment=EXP, extra_args=extra) as m:
            (m.path / "a.txt").write_text("a")
            merged = tmp_path / name / "merged"
            done = overlay(m.path, name)
            try:
                if extra:
                    assert done.returncode == 0, done.stderr
                    assert (merged / "a.txt").read_text() == "a"
                else:
                    assert done.returncode != 0
            finally:
                if os.path.ismount(merged):
                    subprocess.run(["umount", str(merged)], check=True, timeout=30)


def test_blobs_on_a_twice_stacked_filesystem_turn_passthrough_off(tmp_path: Path) -> None:
    """Linux stacks filesystems at most two deep, and a passthrough mount counts as two: the kernel
    refuses blobs on a filesystem that is already stacked twice (overlayfs on overlayfs, as in
    nested containers). The first refusal turns passthrough off, and reads go through the daemon."""
    merged = []
    try:
        lower = tmp_path / "lower"
        lower.mkdir()
        for i in (1, 2):
            up, work, m = (tmp_path / f"{d}{i}" for d in ("up", "work", "merged"))
            for d in (up, work, m):
                d.mkdir()
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={up},workdir={work}",
                            str(m)], check=True, timeout=30)
            merged.append(m)
            lower = m
        data = os.urandom(2 << 20)
        with mounted(lower / "store", tmp_path / "mnt", experiment=EXP) as m:
            (m.path / "a.bin").write_bytes(data)
            assert (m.path / "a.bin").read_bytes() == data
            assert (m.path / "a.bin").read_bytes() == data
            assert "passthrough off: the kernel refused a backing file" in m.log_text()
    finally:
        for m in reversed(merged):
            subprocess.run(["umount", str(m)], check=False, timeout=30)
