"""Who owns the kernel page cache of each inode, so readers of different versions never mix pages.

The kernel keeps one page cache and one size per inode, but open handles of one path may read
different versions. Invariant: the cached pages of an inode only ever hold the bytes of its
*owner*, one version. A reader of the owner keeps the cache (`keep_cache`); a reader of another
version opened while the owner still has open handles is refused (`open_reader` returns None) and
moves the path to a new inode; otherwise the new reader becomes the owner and the kernel drops the
old pages at open (`keep_cache=False`), unless direct-I/O handles are open (below).

Writers always use direct I/O: their bytes are no version until the commit, so they never reach a
reader through the page cache (a writer's own shared mmap puts them there, but readers meanwhile
use direct I/O, and a new owner drops them), and a sequential write costs one copy less
(measured: 1 GiB in 1.4 s against 3 s through the page cache, where every written page is
allocated twice, once for the mount and once for the staged file). The writer's O_TRUNC and writes move the inode's size, so readers opened
while a writer is open use direct I/O too, which reads their own version whole: direct reads are
not cut at the inode's size.

With passthrough (see `passthrough.py`) the owner's readers share one backing id, its blob: the
kernel reads that blob for them and never caches the inode's pages itself. While passthrough
readers are open the kernel refuses a second blob on the inode, and any open that is not
passthrough, which is why other versions' readers move on rather than read direct.

A direct-I/O handle that is mmapped still faults its pages into the inode's page cache, from its
own version (or its staged bytes, for a writer). So no reader becomes the owner while direct-I/O
handles are open: it reads direct too, or the mapping could fault in the owner's pages.

Reads through the page cache are cut at the inode's size. So an inode with page-cache readers never
gets a new size: a writer, a truncate or a newer version of its path moves the path to a new inode
and leaves the old one to its readers (`Operations._retire`). Until the writer that moved a path
opens its new inode, new readers of that path use direct I/O (`moved`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..records import Version

#: Seconds after a writer moved a path during which new readers of the path use direct I/O, unless
#: the writer opened the new inode before: the kernel retries its open at once.
MOVE_GRACE = 1.0


@dataclass
class _Owner:
    version: Version
    handles: int = 0
    decided: bool = False  # its readers' way is chosen: `backing`, or the page cache if None
    backing: int | None = None  # the passthrough backing id its readers share


@dataclass(frozen=True)
class CacheMode:
    """How one open handle uses the page cache."""

    keep_cache: bool
    direct_io: bool


DIRECT = CacheMode(keep_cache=False, direct_io=True)


class PageCache:
    """Page cache ownership per inode (all methods synchronous: no await can split an update)."""

    def __init__(self) -> None:
        self._owners: dict[int, _Owner] = {}
        self._writers: Counter[int] = Counter()
        self._direct: Counter[int] = Counter()  # open direct-I/O handles
        self._moved: dict[str, float] = {}  # path -> when a writer moved it to a new inode

    def open_writer(self, ino: int, path: str) -> CacheMode:
        """A writer of `ino` (at `path`) opens: always direct I/O."""
        self._writers[ino] += 1
        self._moved.pop(path, None)  # its own readers now see the writer
        return self.open_direct(ino)

    def open_reader(self, ino: int, path: str, version: Version) -> CacheMode | None:
        """A handle reading `version` of `ino` (now at `path`) opens; returns its cache mode, or None
        if it must open a new inode of the path instead (see above)."""
        moved = self._moved.get(path)
        if moved is not None and time.monotonic() - moved >= MOVE_GRACE:
            del self._moved[path]
            moved = None
        o = self._owners.get(ino)
        if o is not None and o.version.id == version.id and o.handles > 0:
            o.handles += 1  # also when the path moved on: this inode is its readers' (see above)
            return CacheMode(keep_cache=True, direct_io=False)
        if o is not None and o.handles > 0:
            return None
        if self._writers[ino] or moved is not None or self._direct[ino]:
            return self.open_direct(ino)
        if o is not None and o.version.id == version.id:
            o.handles += 1
            return CacheMode(keep_cache=True, direct_io=False)
        self._owners[ino] = _Owner(version, 1)
        return CacheMode(keep_cache=False, direct_io=False)

    def open_direct(self, ino: int) -> CacheMode:
        """A handle of `ino` that bypasses the page cache opens."""
        self._direct[ino] += 1
        return DIRECT

    def cached_version(self, ino: int) -> Version | None:
        """The version that open page-cache readers of `ino` read, None if there are none."""
        o = self._owners.get(ino)
        return o.version if o is not None and o.handles > 0 else None

    def backing(self, ino: int, register: Callable[[], int | None]) -> int | None:
        """The backing id that readers of `ino`'s owner (one of them opening now) share; the first
        to ask since the owner had no open handles chooses by calling `register`. None: they all
        use the page cache (the kernel refuses to mix the two on one inode)."""
        o = self._owners[ino]
        if not o.decided:
            o.backing, o.decided = register(), True
        return o.backing

    def moved(self, path: str) -> None:
        """A writer moved `path` to a new inode and the kernel retries its open there: readers of
        the path use direct I/O meanwhile, so that open finds no page-cache readers to cut."""
        now = time.monotonic()
        for p in [p for p, t in self._moved.items() if now - t >= MOVE_GRACE]:  # paths nobody opened again
            del self._moved[p]
        self._moved[path] = now

    def close(self, ino: int, mode: CacheMode, writer: bool) -> int | None:
        """A handle opened with `mode` was released; returns a backing id nobody reads any more."""
        if mode.direct_io:
            self._direct[ino] -= 1
            if self._direct[ino] <= 0:
                del self._direct[ino]
        if writer:
            self._writers[ino] -= 1
            if self._writers[ino] <= 0:
                del self._writers[ino]
            return None
        o = self._owners.get(ino)
        if o is not None and not mode.direct_io:
            o.handles -= 1
            if o.handles == 0:
                backing, o.backing, o.decided = o.backing, None, False
                return backing
        return None

    def forget(self, ino: int) -> None:
        """The inode is gone from the kernel: nothing of it is cached any more."""
        self._owners.pop(ino, None)
