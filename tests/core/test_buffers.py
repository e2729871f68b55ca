"""Read buffers start on a page boundary (the kernel copies into a bytearray's data slowly on AMD)."""

import ctypes
import hashlib
import mmap
import os

from mldashfs.buffers import aligned
from mldashfs.hashing import hash_fd


def address(buf: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def test_aligned_buffers_start_on_a_page_and_are_zeroed():
    for size in (0, 1, 4096, 1 << 20, (4 << 20) + 3):
        buf = aligned(size)
        assert address(buf) % mmap.PAGESIZE == 0
        assert len(buf) == max(size, 1) and buf[:] == bytes(len(buf))


def test_hash_fd_reads_through_its_aligned_buffer(tmp_path):
    data = os.urandom((9 << 20) + 5)  # more than two chunks, and a short last one
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert hash_fd(fd) == (hashlib.sha256(data).hexdigest(), len(data))
        assert hash_fd(fd, start=3) == (hashlib.sha256(data[3:]).hexdigest(), len(data))
    finally:
        os.close(fd)
