"""Bytes of a remote store: S3 objects behind the local blob cache.

Writes land in the cache (pinned) and reach S3 later through the uploader. A read of a version the
cache lacks starts a download into the cache that all readers of that version share: ranged GETs run
ahead of the readers (several at once), each reader waits only for the bytes it asks for, and the
copy joins the cache only once its SHA-256 matches the version's. A mismatch fails the reads with
ChecksumMismatch (EIO through the mount) and leaves nothing in the cache.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import os
import threading
from collections.abc import Callable
from typing import BinaryIO

from .blob_cache import BlobCache
from .blobs import Blobs
from .errors import ChecksumMismatch, StoreError, Unavailable
from .hashing import write_all
from .records import Version
from .s3_blobs import S3Blobs

#: Bytes per ranged GET of a download.
RANGE = 8 << 20
#: Ranged GETs of one download in flight at once (read-ahead).
AHEAD = 4


class Download:
    """One version's bytes on their way from S3 into the cache; readers wait for the ranges they need."""

    def __init__(self, s3: S3Blobs, cache: BlobCache, v: Version, pool: concurrent.futures.Executor,
                 done: Callable[[Download], None]) -> None:
        self.v = v
        self.file = cache.partial_path(v.key)
        self.fd = os.open(self.file, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self.filled = 0  # bytes [0, filled) are written and hashed
        self.error: StoreError | None = None
        self.finished = False
        self._cond = threading.Condition()
        self._s3, self._cache, self._pool, self._done = s3, cache, pool, done
        self._write = write_all(self.fd)
        self._readers = 2  # the first reader and the download itself; the fd closes when both let go
        threading.Thread(target=self._run, name=f"download-{v.id}", daemon=True).start()

    def _run(self) -> None:
        h = hashlib.sha256()
        size = self.v.size
        starts = range(0, size, RANGE)
        try:
            futures: list[concurrent.futures.Future[bytes]] = []
            it = iter(starts)
            for start in it:  # keep AHEAD ranged GETs running, consume them in order
                futures.append(self._pool.submit(self._s3.get_range, self.v.key, start, min(start + RANGE, size)))
                if len(futures) < AHEAD:
                    continue
                self._take(futures.pop(0), h)
            for f in futures:
                self._take(f, h)
            if h.hexdigest() != self.v.sha256:
                raise ChecksumMismatch(f"the bytes of {self.v.path!r} (version {self.v.id}) fetched from S3 do not "
                                       f"match their SHA-256 {self.v.sha256}: not cached, not served")
            self._cache.add(self.v.key, self.file, pinned=False)
        except Exception as e:
            err = e if isinstance(e, StoreError) else Unavailable(f"cannot fetch {self.v.path!r} from S3: {e}")
            try:
                os.unlink(self.file)
            except FileNotFoundError:
                pass
            with self._cond:
                self.error = err
        with self._cond:
            self.finished = True
            self._cond.notify_all()
        self._done(self)
        self._release()

    def _take(self, f: concurrent.futures.Future[bytes], h: hashlib._Hash) -> None:
        data = f.result()
        self._write(memoryview(data))  # in order: the file grows sequentially
        h.update(data)
        with self._cond:
            self.filled += len(data)
            self._cond.notify_all()

    def read(self, offset: int, size: int) -> bytes:
        """Bytes at `offset` once downloaded; the last bytes only once the whole copy is verified."""
        end = min(offset + size, self.v.size)
        with self._cond:
            while not self.error and (self.filled < end or (end == self.v.size and not self.finished)):
                self._cond.wait()
            if self.error:
                raise self.error
        return os.pread(self.fd, max(0, end - offset), offset)

    def add_reader(self) -> bool:
        with self._cond:
            if self._readers == 0:
                return False
            self._readers += 1
            return True

    def _release(self) -> None:
        with self._cond:
            self._readers -= 1
            last = self._readers == 0
        if last:
            os.close(self.fd)


class DownloadReader(io.RawIOBase):
    """A seekable reader of one version through its shared Download."""

    def __init__(self, d: Download) -> None:
        self._d = d
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._d.v.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        data = self._d.read(self._pos, len(b))
        n = len(data)
        b[:n] = data
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._d.v.size - self._pos
        data = self._d.read(self._pos, size)
        self._pos += len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            self._d._release()
        super().close()


class RemoteBlobs(Blobs):
    """Blobs of a remote store: committed into the cache (uploads follow), read from the cache or S3."""

    def __init__(self, s3: S3Blobs, cache: BlobCache, admit: Callable[[int], None], concurrency: int = 8) -> None:
        self.s3 = s3
        self.cache = cache
        self.admit = admit  # waits while the cache has no room for more pending bytes
        self._pool = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="s3-get")
        self._downloads: dict[str, Download] = {}
        self._lock = threading.Lock()

    def commit(self, key: str, staged_file: str) -> None:
        self.admit(os.stat(staged_file).st_size)
        self.cache.add(key, staged_file, pinned=True)

    def commit_bytes(self, key: str, data: memoryview) -> None:
        self.admit(data.nbytes)
        tmp = self.cache.partial_path(key)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            write_all(fd)(data)
        finally:
            os.close(fd)
        self.cache.add(key, tmp, pinned=True)

    def open(self, v: Version) -> BinaryIO:
        fd = self.cache.open_copy(v)
        if fd is not None:
            return open(fd, "rb")
        with self._lock:
            d = self._downloads.get(v.key)
            if d is None or not d.add_reader():
                d = Download(self.s3, self.cache, v, self._pool, self._finished)
                self._downloads[v.key] = d
        return io.BufferedReader(DownloadReader(d), buffer_size=1 << 20)  # type: ignore[return-value]

    def _finished(self, d: Download) -> None:
        with self._lock:
            if self._downloads.get(d.v.key) is d:
                del self._downloads[d.v.key]
        if self.cache.over_bound():
            self.cache.evict()

    def delete(self, key: str) -> int:
        self.cache.drop(key)
        return self.s3.delete(key)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
