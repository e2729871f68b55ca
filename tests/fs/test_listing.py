"""Listings that take many readdir replies, through a real mount: `ls -l`, `getdents64` with small
buffers, rewinds, and files that change meanwhile. Between two replies the daemon fetches the next
rows (directories.py, Operations._read_ahead), so these check that a listing stays whole."""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldashfs.store import Store
from tests.mounting import Mount, mounted

EXP = "alice/cv/resnet"
GETDENTS64 = {"x86_64": 217, "aarch64": 61}[platform.machine()]
LIBC = ctypes.CDLL(None, use_errno=True)


@pytest.fixture
def mnt(tmp_path: Path) -> Iterator[Mount]:
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP) as m:
        yield m


def _fill(m: Mount, folder: str, n: int, pad: int) -> dict[str, int]:
    """`n` files saved into `folder` by another door (the Store), names padded with `pad` letters;
    returns name -> size."""
    sizes = {}
    with Store.open(m.store) as s:
        for i in range(n):
            name = f"f{i:05d}" + "n" * pad
            sizes[name] = i % 997
            s.put_bytes(f"{EXP}/{folder}/{name}", b"x" * sizes[name])
    return sizes


def _getdents(fd: int, size: int) -> list[str]:
    """One getdents64(2) call with a buffer of `size` bytes: the names it returned ([] at the end)."""
    buf = ctypes.create_string_buffer(size)
    n = LIBC.syscall(GETDENTS64, fd, buf, size)
    if n < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    names, pos = [], 0
    while pos < n:
        reclen = struct.unpack_from("H", buf.raw, pos + 16)[0]  # d_ino u64, d_off s64, d_reclen u16, d_type u8
        names.append(os.fsdecode(buf.raw[pos + 19 : pos + reclen].split(b"\0", 1)[0]))
        pos += reclen
    return [name for name in names if name not in (".", "..")]


def test_ls_l_of_a_folder_of_several_replies_lists_each_file_once_with_its_size(mnt: Mount) -> None:
    sizes = _fill(mnt, "many", 6000, 200)  # about 2,900 entries fit a 1 MiB reply: three replies
    out = subprocess.run(["ls", "-l", str(mnt.path / "many")], capture_output=True, text=True, check=True,
                         env={**os.environ, "LC_ALL": "C"}).stdout.splitlines()
    assert out[0].startswith("total ")
    listed = [(f[8], int(f[4])) for f in (line.split(None, 8) for line in out[1:])]
    assert [name for name, _ in listed] == sorted(sizes)
    assert dict(listed) == sizes
    assert "ERROR" not in mnt.log_text() and "Traceback" not in mnt.log_text()


def test_small_buffers_changes_meanwhile_and_a_rewind(mnt: Mount) -> None:
    folder = mnt.path / "runs"
    sizes = _fill(mnt, "runs", 3000, 0)  # 64 KiB buffers take about 390 entries each: 8 replies
    names = sorted(sizes)
    gone, rewritten, added = names[2500], names[2600], "zzz-added"
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        first = _getdents(fd, 64 << 10)
        assert 0 < len(first) < 1000 and first == names[: len(first)]
        os.unlink(folder / gone)
        (folder / rewritten).write_bytes(b"y" * 5000)
        (folder / added).write_bytes(b"new")
        seen = list(first)
        while batch := _getdents(fd, 64 << 10):
            seen += batch
        assert len(seen) == len(set(seen)), "a name was listed twice"
        # entries changed during the listing may be listed or not (POSIX); every other one exactly once
        assert set(names) - {gone} <= set(seen) <= set(names) | {added}

        os.lseek(fd, 0, os.SEEK_SET)  # rewinddir: the listing starts again, as the store is now
        again = []
        while batch := _getdents(fd, 4096):  # about 20 entries per reply
            again += batch
    finally:
        os.close(fd)
    assert again == sorted(set(names) - {gone}) + [added]
    assert (folder / rewritten).stat().st_size == 5000 and not (folder / gone).exists()
    assert {n: (folder / n).stat().st_size for n in names[:50]} == {n: sizes[n] for n in names[:50]}
