"""Open file handles: readers pinned to one version, writers holding a private staged copy.

A writer's bytes become a version when it is committed (on the close that follows a write, or on
release for a create/truncate that wrote nothing); until then nobody else sees them. Every change
of a writer's state happens under its `lock`, so a commit never races a write of the same handle.
"""

from __future__ import annotations

import itertools
import mmap
import os
import threading
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import trio

from ..records import Version
from ..staging import Staged
from ..store import Store
from .page_cache import DIRECT, CacheMode


class ReadHandle:
    """Reads one immutable version (or nothing, for a file created elsewhere and not committed yet)."""

    def __init__(self, ino: int, store: Store, version: Version | None) -> None:
        self.ino = ino
        self.version = version
        self.cache = DIRECT  # set by the open, once the handle is made (see Operations._open_reader)
        self._fd = -1
        self._file: BinaryIO | None = None
        self._lock = threading.Lock()
        if version is not None:
            fd = store.open_copy(version)
            if fd is not None:
                self._fd = fd
                # Twice the disk's readahead: the daemon asks for 1 MiB at a time and outruns the
                # disk, so each readahead window ends in a wait (about 95 waits per GiB read cold,
                # 50-65 with this; best cold read of eight rounds 1,250 against 1,058 MB/s).
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            else:
                self._file = store.open_version(version)

    @property
    def blob_fd(self) -> int:
        """The open blob (a file on the local disk), -1 if the version is read another way."""
        return self._fd

    def read_cached(self, offset: int, size: int, into: mmap.mmap) -> memoryview | None:
        """The bytes at `offset` if the page cache holds all of them (never waits for the disk), else
        None: the trio loop serves cached reads itself and sends only misses to a thread. The bytes
        are a view of `into` (no zeroing, no copy): valid until the loop reads into `into` again."""
        if self._fd < 0 or self.version is None:
            return None
        want = max(0, min(size, self.version.size - offset))
        if want == 0:
            return memoryview(b"")
        view = memoryview(into)[:want]
        try:
            n = os.preadv(self._fd, [view], offset, os.RWF_NOWAIT)
        except OSError:  # EAGAIN: not all cached; EOPNOTSUPP: no RWF_NOWAIT on this filesystem
            return None
        return view if n == want else None

    def read(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes at `offset` (blocking: call it off the trio loop)."""
        if self._fd >= 0:
            return os.pread(self._fd, size, offset)
        if self._file is None:
            return b""
        with self._lock:
            self._file.seek(offset)
            return self._file.read(size)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._file is not None:
            self._file.close()
            self._file = None


class HandleLock:
    """A trio.Lock that takes no scheduler pass when it is free: write, flush and release of every
    small file take it, and each trio checkpoint costs about as much as the handler's own work."""

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


@dataclass(eq=False)
class WriteHandle:
    """One open-for-write of one inode: the staged bytes plus xattr/attr changes made meanwhile."""

    ino: int
    base: Version | None
    cache: CacheMode
    created: bool = False  # the path had no version when this handle created it
    pending: bool = False  # created or truncated: commit even if nothing is written
    staged: Staged | None = None
    committing: int | None = None  # size of the staged bytes a commit took and has not finished
    copied: bool = False  # the staged file holds its base's bytes (no lazy copy left to make)
    changes: dict[str, Any] = field(default_factory=dict)  # description/tags/metadata for the commit
    attrs: dict[str, Any] = field(default_factory=dict)  # mtime/mode for the commit
    mtime: float = 0.0
    closed: bool = False  # flushed by a close() and not written since: its release is on the way
    failed: int = 0  # the errno of a write or commit that failed: nothing of this handle is stored
    lock: HandleLock = field(default_factory=HandleLock)
    released: trio.Event = field(default_factory=trio.Event)

    @property
    def uncommitted(self) -> bool:
        """True if a commit now would make a new version."""
        return self.pending or (self.staged is not None and self.staged.dirty)

    def size(self) -> int:
        """The size readers and `stat` see: the staged bytes, also while a commit is taking them."""
        if self.staged is not None:
            return self.staged.size
        if self.committing is not None:
            return self.committing
        return self.base.size if self.base is not None else 0


class HandleTable:
    """File handle numbers -> open handles, and the writers open on each inode."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.handles: dict[int, ReadHandle | WriteHandle] = {}
        self.writers: dict[int, list[WriteHandle]] = {}

    def add(self, handle: ReadHandle | WriteHandle) -> int:
        fh = next(self._numbers)
        self.handles[fh] = handle
        if isinstance(handle, WriteHandle):
            self.writers.setdefault(handle.ino, []).append(handle)
        return fh

    def pop(self, fh: int) -> ReadHandle | WriteHandle:
        handle = self.handles.pop(fh)
        if isinstance(handle, WriteHandle):
            ws = self.writers[handle.ino]
            ws.remove(handle)
            if not ws:
                del self.writers[handle.ino]
        return handle

    def writer(self, ino: int) -> WriteHandle | None:
        """The most recently opened writer of `ino`, if any."""
        ws = self.writers.get(ino)
        return ws[-1] if ws else None

    def uncommitted_writer(self, ino: int) -> WriteHandle | None:
        """The newest writer of `ino` whose bytes are not a version yet."""
        for w in reversed(self.writers.get(ino, [])):
            if w.uncommitted:
                return w
        return None
