"""The local blob cache of a remote store: complete, verified copies of versions' bytes as plain files.

A file appears in the cache only whole (by rename), so any file there is a complete copy:
- `pinned/`: bytes committed here and not yet uploaded; never evicted. The uploader moves them to
  `blobs/` once published; a pinned file whose journal row a crash never wrote is removed at open
  once it is an hour old (a live commit writes its row within moments);
- `blobs/`: uploaded or downloaded (and checked against their SHA-256) copies, evicted least
  recently used first once the cache holds more than its bound.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from .blobs import LocalCopies
from .journal import Journal
from .local_blobs import drop_pages
from .records import Version
from .staging import alive as _alive
from .staging import left_by_crash

#: A read refreshes a copy's place in the LRU order at most this often (an mtime update per open
#: would cost a metadata write each time).
TOUCH_EVERY = 60.0
#: A pinned file without a journal row this old is a crash's leftover (step 1 in journal.py).
ORPHAN_AGE = 3600.0
#: Eviction frees down to this share of the bound, so it does not run again at the next add.
LOW_WATER = 0.9


class BlobCache(LocalCopies):
    """Cached copies under `{folder}/blobs`, bounded to `bound` bytes of evictable (uploaded) data."""

    def __init__(self, folder: str, bound: int, journal: Journal) -> None:
        self.folder = os.path.join(folder, "blobs")
        self.pinned = os.path.join(folder, "pinned")
        self.partial = os.path.join(folder, "partial")  # downloads in progress
        self.bound = bound
        self._lock = threading.Lock()
        for d in (self.folder, self.pinned, self.partial):
            os.makedirs(d, exist_ok=True)
        keep = {self.name(k) for k in journal.keys()}
        for e in os.scandir(self.pinned):
            if e.name not in keep and e.stat().st_mtime < time.time() - ORPHAN_AGE:
                os.unlink(e.path)
        for name in os.listdir(self.partial):  # downloads a crash cut short: never trusted
            pid = name.split(".")[1] if name.count(".") == 2 else ""
            if not (pid.isdigit() and _alive(int(pid))):
                os.unlink(os.path.join(self.partial, name))
        self._total = sum(e.stat().st_size for e in os.scandir(self.folder) if e.is_file())

    @staticmethod
    def name(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()[:40]

    def path(self, key: str) -> str:
        """Where the copy of `key` is: pinned while its upload is pending, else among the cached ones."""
        pinned = os.path.join(self.pinned, self.name(key))
        return pinned if os.path.exists(pinned) else os.path.join(self.folder, self.name(key))

    def partial_path(self, key: str) -> str:
        return os.path.join(self.partial, f"{self.name(key)}.{os.getpid()}.{threading.get_ident()}")

    # -- LocalCopies -------------------------------------------------------------------------

    def local_file(self, v: Version) -> str | None:
        fd = self.open_copy(v)
        if fd is None:
            return None
        os.close(fd)
        return self.path(v.key)

    def open_copy(self, v: Version) -> int | None:
        # Pinned first: an upload's end renames the pinned copy to the cached ones, so of the two
        # opens, in this order, one finds it (unless it is evicted or dropped, then there is none).
        for folder in (self.pinned, self.folder):
            try:
                fd = os.open(os.path.join(folder, self.name(v.key)), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            st = os.fstat(fd)
            if st.st_size != v.size:  # never serve a copy of other bytes under the key
                os.close(fd)
                return None
            now = time.time()
            if now - st.st_mtime > TOUCH_EVERY:
                os.utime(fd, (now, now))
            return fd
        return None

    def forget_pages(self, v: Version) -> None:
        drop_pages(self.path(v.key))

    # -- filling and emptying ----------------------------------------------------------------

    def add(self, key: str, file: str, pinned: bool) -> None:
        """Move the complete file `file` in as the copy of `key`: pinned (committed here, to upload) or
        cached (a verified download)."""
        if pinned:
            os.rename(file, os.path.join(self.pinned, self.name(key)))
            return
        size = os.stat(file).st_size
        os.rename(file, os.path.join(self.folder, self.name(key)))
        with self._lock:
            self._total += size

    def unpin(self, key: str) -> None:
        """The copy of `key` is uploaded: it becomes evictable."""
        try:
            size = os.stat(os.path.join(self.pinned, self.name(key))).st_size
            os.rename(os.path.join(self.pinned, self.name(key)), os.path.join(self.folder, self.name(key)))
        except FileNotFoundError:
            return
        with self._lock:
            self._total += size

    def share(self, key: str, blob: str) -> None:
        """The copy of `key` holds the same bytes as blob `blob` (a version published onto that blob by
        dedup): hard-link it in as the copy of `blob`, unless one is there, so reads here stay local."""
        dest = os.path.join(self.folder, self.name(blob))
        try:
            os.link(self.path(key), dest)
            size = os.stat(dest).st_size
        except (FileExistsError, FileNotFoundError):
            return
        with self._lock:
            self._total += size

    def drop(self, key: str) -> None:
        """Remove every copy of `key` (a deleted version)."""
        for folder in (self.pinned, self.folder):
            try:
                size = os.stat(os.path.join(folder, self.name(key))).st_size
                os.unlink(os.path.join(folder, self.name(key)))
            except FileNotFoundError:
                continue
            if folder == self.folder:
                with self._lock:
                    self._total -= size

    def over_bound(self) -> bool:
        return self._total > self.bound

    def evict(self) -> int:
        """Delete least recently used cached copies until the cache is under its low water mark; returns
        bytes freed. Pinned copies (pending uploads) are never evicted."""
        entries = sorted((e for e in os.scandir(self.folder) if e.is_file()), key=lambda e: e.stat().st_mtime)
        total = sum(e.stat().st_size for e in entries)
        freed = 0
        target = int(self.bound * LOW_WATER)
        for e in entries:
            if total - freed <= target:
                break
            size = e.stat().st_size
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                continue
            freed += size
        with self._lock:
            self._total = total - freed
        return freed

    # -- fsck -------------------------------------------------------------------------------------

    def leftover_partials(self, min_age: float) -> list[str]:
        """Downloads a crash cut short (`{name}.{pid}.{thread}` of a gone process): never completed."""
        out = []
        for name in sorted(os.listdir(self.partial)):
            pid = name.split(".")[1] if name.count(".") == 2 else ""
            file = os.path.join(self.partial, name)
            if left_by_crash(file, int(pid) if pid.isdigit() else None, min_age):
                out.append(file)
        return out

    def unowned(self, keys: set[str], min_age: float) -> list[str]:
        """Cached or pinned files older than `min_age` whose name is no key of `keys` (the keys of
        every version and journal row): copies nothing will read or upload."""
        names = {self.name(k) for k in keys}
        cutoff = time.time() - min_age
        out = []
        for folder in (self.pinned, self.folder):
            for e in sorted(os.scandir(folder), key=lambda e: e.name):
                try:
                    old = e.stat().st_mtime < cutoff
                except FileNotFoundError:
                    continue
                if e.name not in names and old:
                    out.append(e.path)
        return out

    def usage(self) -> int:
        """Bytes of evictable copies held now (pinned ones are counted as pending uploads)."""
        return self._total
