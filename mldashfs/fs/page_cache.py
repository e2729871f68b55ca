"""Who owns the kernel page cache of each inode, so readers of different versions never mix pages.

The kernel keeps one page cache per inode, but open handles of one path may read different
versions. Invariant: the cached pages of an inode only ever hold the bytes of its *owner* (one
version id, or one cached writer). A handle of the owner keeps the cache (`keep_cache`); any other
handle opened while the owner still has open handles bypasses the cache (`direct_io`); otherwise
the new handle becomes the owner and the kernel drops the old pages at open (`keep_cache=False`).
"""

from __future__ import annotations

from dataclasses import dataclass

WRITER = -1  # owner id while a cached writer is open: its pages are not any committed version yet


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

    def open(self, ino: int, version: int) -> CacheMode:
        """A handle reading `version` (or WRITER) opens; returns its cache mode."""
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

    def close(self, ino: int, mode: CacheMode) -> None:
        """A handle opened with `mode` was released."""
        o = self._owners.get(ino)
        if o is None or mode.direct_io:
            return
        o.handles -= 1
        if o.handles <= 0 and o.version == WRITER:
            del self._owners[ino]

    def forget(self, ino: int) -> None:
        """The inode is gone from the kernel: nothing of it is cached any more."""
        self._owners.pop(ino, None)
