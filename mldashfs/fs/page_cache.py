"""Who owns the kernel page cache of each inode, so readers of different versions never mix pages.

The kernel keeps one page cache per inode, but open handles of one path may read different
versions. Invariant: the cached pages of an inode only ever hold the bytes of its *owner* (one
version id, or one cached writer). A handle of the owner keeps the cache (`keep_cache`); any other
handle opened while the owner still has open handles bypasses the cache (`direct_io`); otherwise
the new handle becomes the owner and the kernel drops the old pages at open (`keep_cache=False`).

A writer that opens with O_TRUNC makes the kernel cut the inode's size and pages at once, under
every reader of the cache. So while a file is being rewritten (a writer is open, or was within
`REWRITE_WINDOW` seconds) new readers use direct I/O, which reads their own version whole.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

WRITER = -1  # owner id while a cached writer is open: its pages are not any committed version yet
REWRITE_WINDOW = 2.0


@dataclass
class _Owner:
    version: int | None = None
    handles: int = 0


@dataclass(frozen=True)
class CacheMode:
    """How one open handle uses the page cache."""

    keep_cache: bool
    direct_io: bool


class PageCache:
    """Page cache ownership per inode (all methods synchronous: no await can split an update)."""

    def __init__(self) -> None:
        self._owners: dict[int, _Owner] = {}
        self._writers: Counter[int] = Counter()
        self._written: dict[int, float] = {}  # ino -> when a writer last opened or closed

    def open(self, ino: int, version: int) -> CacheMode:
        """A handle reading `version`, or a writer (WRITER), opens; returns its cache mode."""
        if version == WRITER:
            self._writers[ino] += 1
            self._written[ino] = time.monotonic()
        elif self._writers[ino] or time.monotonic() - self._written.get(ino, -REWRITE_WINDOW) < REWRITE_WINDOW:
            return CacheMode(keep_cache=False, direct_io=True)
        o = self._owners.setdefault(ino, _Owner())
        if o.version == version and version != WRITER:
            o.handles += 1
            return CacheMode(keep_cache=True, direct_io=False)
        if o.handles > 0:
            return CacheMode(keep_cache=False, direct_io=True)
        o.version, o.handles = version, 1
        return CacheMode(keep_cache=False, direct_io=False)

    def committed(self, ino: int, mode: CacheMode, version: int) -> None:
        """A cached writer committed `version`: the pages it wrote are that version's bytes."""
        o = self._owners.get(ino)
        if o is not None and not mode.direct_io and o.version == WRITER:
            o.version = version

    def changed(self, ino: int, mode: CacheMode) -> None:
        """A cached writer changed bytes again after a commit: the pages are no version any more."""
        o = self._owners.get(ino)
        if o is not None and not mode.direct_io:
            o.version = WRITER

    def close(self, ino: int, mode: CacheMode, writer: bool) -> None:
        """A handle opened with `mode` was released."""
        if writer:
            self._writers[ino] -= 1
            if self._writers[ino] <= 0:
                del self._writers[ino]
            self._written[ino] = time.monotonic()
        o = self._owners.get(ino)
        if o is None or mode.direct_io:
            return
        o.handles -= 1
        if o.handles <= 0 and o.version == WRITER:
            del self._owners[ino]

    def forget(self, ino: int) -> None:
        """The inode is gone from the kernel: nothing of it is cached any more."""
        self._owners.pop(ino, None)
        self._written.pop(ino, None)
