"""SHA-256 computed while bytes stream through, on a thread of its own so copying and hashing overlap."""

from __future__ import annotations

import hashlib
import mmap
import os
import queue
import threading
from collections.abc import Callable

from .buffers import aligned

CHUNK = 4 << 20
INLINE = 64 << 10
DEPTH = 4


def copy_hashing(
    readinto: Callable[[memoryview], int | None],
    write: Callable[[memoryview], object],
    progress: Callable[[int], None] | None = None,
    h: hashlib._Hash | None = None,
    size_hint: int | None = None,
) -> tuple[hashlib._Hash, int]:
    """Copy everything `readinto` yields to `write`, reading each byte once; return (sha256, size).

    This thread reads and writes; a second thread hashes the same buffers (hashlib releases the
    GIL), so on two cores the copy costs little more than the hash alone.
    """
    h = h or hashlib.sha256()
    if size_hint is not None and size_hint < CHUNK:  # small: one buffer, no thread
        mv = memoryview(aligned(max(size_hint, 1 << 16)))
        total = 0
        while n := readinto(mv):
            h.update(mv[:n])
            write(mv[:n])
            total += n
            if progress is not None:
                progress(n)
        return h, total
    bufs = [aligned(CHUNK) for _ in range(DEPTH)]
    free = threading.Semaphore(DEPTH)
    todo: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()

    def hasher() -> None:
        while (mv := todo.get()) is not None:
            h.update(mv)
            free.release()

    t = threading.Thread(target=hasher, name="mldashfs-hash", daemon=True)
    t.start()
    total, i = 0, 0
    try:
        while True:
            free.acquire()
            mv = memoryview(bufs[i % DEPTH])
            n = readinto(mv)
            if not n:
                free.release()
                break
            chunk = mv[:n]
            todo.put(chunk)
            write(chunk)
            total += n
            i += 1
            if progress is not None:
                progress(n)
    finally:
        todo.put(None)
        t.join()
    return h, total


def copy_file_hashing(
    src_fd: int,
    write: Callable[[memoryview], object],
    progress: Callable[[int], None] | None = None,
    h: hashlib._Hash | None = None,
) -> tuple[hashlib._Hash, int]:
    """Copy a regular file to `write` through one read-only mapping: this thread writes each slice
    while a second thread hashes it, so the bytes are read once and copied once (by the kernel).

    Falls back to `copy_hashing` for files that cannot be mapped (empty, pipes, procfs).
    """
    size = os.fstat(src_fd).st_size
    try:
        m = mmap.mmap(src_fd, size, prot=mmap.PROT_READ) if size else None
    except (OSError, ValueError):
        m = None
    if m is None:
        f = os.fdopen(os.dup(src_fd), "rb", buffering=0)
        with f:
            return copy_hashing(f.readinto, write, progress, h, size_hint=size)  # type: ignore[arg-type]
    h = h or hashlib.sha256()
    m.madvise(mmap.MADV_WILLNEED)  # not SEQUENTIAL: that may drop pages between our two readers
    mv = memoryview(m)
    slices = [mv[off : off + CHUNK] for off in range(0, size, CHUNK)]

    def hasher() -> None:
        for piece in slices:
            h.update(piece)

    t = threading.Thread(target=hasher, name="mldashfs-hash", daemon=True)
    t.start()
    try:
        for piece in slices:
            write(piece)
            if progress is not None:
                progress(len(piece))
    finally:
        t.join()
        for piece in slices:
            piece.release()
        mv.release()
        m.close()
    return h, size


def write_all(fd: int) -> Callable[[memoryview], None]:
    """A writer for `copy_hashing` that writes the whole buffer to `fd`."""

    def write(mv: memoryview) -> None:
        while mv:
            n = os.write(fd, mv)
            mv = mv[n:]

    return write


def hash_fd(fd: int, start: int = 0, h: hashlib._Hash | None = None) -> tuple[str, int]:
    """SHA-256 of the bytes of `fd` from `start` to its end, continuing `h` if given."""
    h = h or hashlib.sha256()
    mv = memoryview(aligned(CHUNK))
    pos = start
    while True:
        n = os.preadv(fd, [mv], pos)
        if not n:
            break
        h.update(mv[:n])
        pos += n
    return h.hexdigest(), pos


class BackgroundHasher:
    """Hashes sequential writes on a thread of its own; `feed` returns at once unless it lags far behind."""

    def __init__(self, h: hashlib._Hash | None = None, max_lag: int = 64) -> None:
        self._h = h or hashlib.sha256()
        self._max_lag = max_lag
        self._todo: queue.Queue[bytes | memoryview | None] | None = None  # made with the thread
        self._thread: threading.Thread | None = None

    def feed(self, data: bytes | memoryview) -> None:
        todo = self._todo
        if todo is None:
            if len(data) < INLINE:  # small writes: hashing inline is cheaper than a thread
                self._h.update(data)
                return
            todo = self._todo = queue.Queue(maxsize=self._max_lag)
            self._thread = threading.Thread(target=self._run, args=(todo,), name="mldashfs-hash", daemon=True)
            self._thread.start()
        todo.put(data)

    def _run(self, todo: queue.Queue[bytes | memoryview | None]) -> None:
        while (data := todo.get()) is not None:
            self._h.update(data)

    def finish(self) -> hashlib._Hash:
        """Wait until everything fed is hashed; the hash object is returned for more updates or a digest."""
        if self._todo is not None and self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._todo = self._thread = None
        return self._h
