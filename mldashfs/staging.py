"""The staging area: private files where bytes are written and hashed before they become a version.

Crash points: a staging file is named `{pid}-{random}{ext}`; one whose process is gone is removed
when a store is opened. Nothing in staging is visible to readers: a version exists only once its
bytes are at their blob key and its catalog row is committed (see store.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from .hashing import BackgroundHasher, copy_file_hashing, hash_fd, write_all

if TYPE_CHECKING:
    from .records import Version


def alive(pid: int) -> bool:
    """Whether process `pid` still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), None if it is gone or unknown (no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, after the command's parens
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def left_by_crash(file: str, pid: int | None, min_age: float) -> bool:
    """Whether a private file named for process `pid` is a crash's leftover: its process is gone, or
    the file is older than the process now holding that pid (a reboot reused it); a file named for no
    process is one when older than `min_age`."""
    try:
        mtime = os.stat(file).st_mtime
    except FileNotFoundError:
        return False
    if pid is None:
        return time.time() - mtime > min_age
    if not alive(pid):
        return True
    start = process_start(pid)
    return start is not None and mtime < start - 1  # its owner wrote it after starting (1 s: tick rounding)


class Staging:
    """A folder on the store's disk holding one subfolder per staged file."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        for entry in os.listdir(self.folder):
            pid = entry.split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
                try:
                    os.unlink(os.path.join(self.folder, entry))
                except OSError:
                    pass

    def leftovers(self, min_age: float) -> list[str]:
        """Staging files a crash left (see `left_by_crash`), which no live writer will ever commit."""
        out = []
        for entry in sorted(os.listdir(self.folder)):
            pid = entry.split("-", 1)[0]
            file = os.path.join(self.folder, entry)
            if left_by_crash(file, int(pid) if pid.isdigit() else None, min_age):
                out.append(file)
        return out

    def new_file(self, name: str) -> str:
        """A fresh path `{folder}/{pid}-{random}{ext}`; it keeps the name's extension for encoders."""
        ext = os.path.splitext(name)[1]
        ext = ext if len(ext) <= 32 else ""
        return os.path.join(self.folder, f"{os.getpid()}-{secrets.token_hex(8)}{ext}")

    @staticmethod
    def remove(file: str) -> None:
        """Drop a staged file if it is still there."""
        try:
            os.unlink(file)
        except FileNotFoundError:
            pass


#: A staged file stays in memory up to this size; beyond it (or for fsync/fspath) it gets a staging file.
SPILL = 1 << 20


class Staged:
    """A private, writable copy of a file being written; keeps its SHA-256 while writes are sequential.

    Small files stay in memory (a commit then writes them straight to their key); larger ones spill
    to a staging file on the store's disk. With a `base`, the staged bytes start as a copy of those
    bytes, made lazily by the first read, write or truncate (a truncate to 0 skips the copy).
    Thread-safe.
    """

    def __init__(self, staging: Staging, name: str, base: tuple[Callable[[], BinaryIO], int] | None = None):
        self._staging = staging
        self._name = name
        self.path: str | None = None  # the staging file, once spilled
        self.fd = -1
        self._mem: bytearray | None = bytearray()
        self._base = base
        self._size = base[1] if base else 0
        self._hasher = BackgroundHasher()
        self._hashed = 0
        self._sequential = True
        self._external = False
        self._lock = threading.Lock()
        self._finished: tuple[str, int] | None = None
        self.dirty = False

    @property
    def in_memory(self) -> bool:
        return self._mem is not None

    @property
    def data(self) -> memoryview:
        """The bytes of an in-memory staged file."""
        assert self._mem is not None
        return memoryview(self._mem)

    @property
    def size(self) -> int:
        if self._external:
            return os.fstat(self.fd).st_size
        return self._size

    def _spill(self) -> None:
        """Move in-memory bytes to a staging file (no-op once spilled)."""
        if self._mem is None:
            return
        self.path = self._staging.new_file(self._name)
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            write_all(self.fd)(memoryview(self._mem))
        except BaseException:  # a full disk: the bytes stay in memory and no staging file is left
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            Staging.remove(self.path)
            self.path = None
            raise
        self._mem = None

    def _materialize(self) -> None:
        if self._base is None:
            return
        opener, size = self._base
        self._base = None
        with opener() as src:
            if self._mem is not None and size <= SPILL:
                data = src.read()
                self._mem[:] = data
                h, n = hashlib.sha256(data), len(data)
            else:
                self._spill()
                h, n = copy_file_hashing(src.fileno(), write_all(self.fd))
        self._hasher = BackgroundHasher(h)
        self._hashed = self._size = n

    def mark_external(self) -> None:
        """Bytes will be written through `path` by someone else: hash the whole file at commit."""
        with self._lock:
            self._materialize()
            self._spill()
            self._external = True

    def write(self, offset: int, data: bytes | memoryview) -> int:
        with self._lock:
            self._materialize()
            n = len(data)
            if self._mem is not None and offset + n > SPILL:
                self._spill()
            if self._mem is not None:
                if offset > len(self._mem):
                    self._mem.extend(bytes(offset - len(self._mem)))
                self._mem[offset : offset + n] = data
            else:
                n = os.pwrite(self.fd, data, offset)
            if self._sequential and offset == self._hashed:
                # The hash may run later on another thread: keep an immutable copy, since callers
                # (torch.save, BufferedWriter) reuse their buffer as soon as write() returns.
                chunk = data if isinstance(data, bytes) else bytes(data)
                self._hasher.feed(chunk if n == len(chunk) else chunk[:n])
                self._hashed += n
            else:
                self._sequential = False
            self._size = max(self._size, offset + n)
            self.dirty = True
            return n

    def read(self, offset: int, size: int) -> bytes:
        with self._lock:
            self._materialize()
            if self._mem is not None:
                return bytes(self._mem[offset : offset + size])
            return os.pread(self.fd, size, offset)

    def truncate(self, size: int) -> None:
        with self._lock:
            if size == 0:
                self._base = None
                self._hasher.finish()
                self._hasher = BackgroundHasher()
                self._hashed = 0
                self._sequential = True
            else:
                self._materialize()
                if size < self._hashed:
                    self._sequential = False
                if size > SPILL:
                    self._spill()
            if self._mem is not None:
                if size < len(self._mem):
                    del self._mem[size:]
                else:
                    self._mem.extend(bytes(size - len(self._mem)))
            else:
                os.ftruncate(self.fd, size)
            self._size = size
            self.dirty = True

    def fsync(self) -> None:
        """Make the staged bytes durable on the local disk (spilling them to a file first)."""
        with self._lock:
            self._materialize()
            self._spill()
            os.fsync(self.fd)

    def finish(self) -> tuple[str, int]:
        """Complete the bytes and return (sha256 hex, size); a staging file is closed afterwards.
        Calling it again returns the same (a commit retried elsewhere after WouldBlock)."""
        with self._lock:
            if self._finished is None:
                self._finished = self._digest()
            return self._finished

    def _digest(self) -> tuple[str, int]:
        self._materialize()
        h = self._hasher.finish()
        if self._mem is not None:
            if not self._sequential:
                return hashlib.sha256(self._mem).hexdigest(), len(self._mem)
            h.update(memoryview(self._mem)[self._hashed :])  # the unhashed tail, if any
            return h.hexdigest(), len(self._mem)
        if self._external or not self._sequential:
            digest, size = hash_fd(self.fd)
        else:
            digest, size = hash_fd(self.fd, self._hashed, h)  # the unhashed tail, if any
        os.close(self.fd)
        self.fd = -1
        return digest, size

    def discard(self) -> None:
        """Throw the staged bytes away."""
        with self._lock:
            self._hasher.finish()
            self._mem = None
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            if self.path is not None:
                Staging.remove(self.path)


class Writer(io.RawIOBase):
    """A writable, seekable file object over a Staged file; closing it (or a clean `with`) commits.

    An exception inside `with` discards the bytes instead, so nothing half-written is stored.
    """

    def __init__(self, staged: Staged, commit: Callable[[Staged], Version]) -> None:
        super().__init__()
        self._staged = staged
        self._commit = commit
        self._pos = 0
        self.version: Version | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def fspath(self) -> str:
        """A real path (with the file's extension) to write through for encoders that need one; makes
        commit re-hash."""
        self._staged.mark_external()
        assert self._staged.path is not None
        return self._staged.path


    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed writer")
        mv = memoryview(b).cast("B")
        n = self._staged.write(self._pos, mv)
        self._pos += n
        return n

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._staged.read(self._pos, len(b))
        memoryview(b)[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self._staged.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if self._pos < 0:
            raise ValueError("negative seek position")
        return self._pos

    def tell(self) -> int:
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        self._staged.truncate(size)
        return size

    def close(self) -> None:
        """Commit the bytes as a new version (once)."""
        if not self.closed:
            super().close()
            self.version = self._commit(self._staged)

    def discard(self) -> None:
        if not self.closed:
            super().close()
            self._staged.discard()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()

    def __del__(self) -> None:
        """A writer dropped without close() stores nothing (it may be half-written)."""
        if not self.closed:
            self.discard()
