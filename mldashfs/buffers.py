"""Page-aligned buffers to read into: the kernel copies into them at full speed."""

from __future__ import annotations

import mmap


def aligned(size: int) -> mmap.mmap:
    """A zeroed buffer of `size` bytes (at least 1) that starts on a page boundary.

    On AMD EPYC (these machines) the kernel copies to a destination 8 to 31 bytes past a page
    boundary at a fifth of its speed, and CPython puts a large bytearray's data 16 bytes past one:
    reading from the page cache took 550-580 us per MiB into a bytearray, 85-100 into this.
    """
    return mmap.mmap(-1, max(size, 1))
