"""Write-back of a remote store: background uploaders that take versions from the journal, put their
bytes in S3 and then publish their records to the remote catalog (see journal.py for crash points).

`lock` orders the publishing of a record against changes of pending records (renames, metadata
edits, deletes of pending versions in WriteBackCatalog): a record is read, published and removed
from the journal under it, so a published record is always the latest the user gave.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .blob_cache import BlobCache
from .catalog import Catalog
from .errors import AlreadyExists, Unavailable
from .journal import Journal
from .records import Version
from .s3_blobs import S3Blobs

log = logging.getLogger(__name__)

#: Wait before a version that failed is tried again (doubling per attempt up to the last figure).
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)


class WriteBack:
    """Uploader threads of one process over the journal of a cache folder."""

    def __init__(self, journal: Journal, cache: BlobCache, s3: S3Blobs, catalog: Catalog, workers: int = 4) -> None:
        self.journal = journal
        self.cache = cache
        self.s3 = s3
        self.catalog = catalog  # the remote catalog (records are published there)
        self.lock = threading.RLock()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._retry_at: dict[int, float] = {}  # version id -> monotonic time of its next attempt here
        self._attempts: dict[int, int] = {}
        #: Called with its path after a record is published (the catalog forgets answers it cached about it).
        self.published: Callable[[str], None] = lambda path: None
        self._threads: list[threading.Thread] = []
        self.add_workers(workers)

    def add_workers(self, n: int) -> None:
        """Start `n` more uploader threads (a store opened with none, e.g. by fsck, may start some later)."""
        for _ in range(n):
            t = threading.Thread(target=self._work, name=f"uploader-{len(self._threads)}", daemon=True)
            self._threads.append(t)
            t.start()

    # -- the uploaders ---------------------------------------------------------------------

    def notify(self) -> None:
        """A version was journaled (or a waiter should look again)."""
        with self._changed:
            self._changed.notify_all()

    def _work(self) -> None:
        me = f"{os.getpid()}:{threading.get_ident()}"
        while not self._stop.is_set():
            try:
                v = self.journal.claim(me, self._retry_at)
            except Exception as e:  # the journal itself failed (disk): log, wait, try again
                log.error("upload journal: %s", e)
                self._stop.wait(1.0)
                continue
            if v is None:
                with self._changed:
                    self._changed.wait(0.5)
                continue
            error = self._upload(v, me)
            if error is None:
                self._retry_at.pop(v.id, None)
                self._attempts.pop(v.id, None)
            else:
                attempt = self._attempts[v.id] = self._attempts.get(v.id, 0) + 1
                self._retry_at[v.id] = time.monotonic() + BACKOFF[min(attempt, len(BACKOFF)) - 1]
                log.warning("upload of %s (version %s) failed, will retry: %s", v.path, v.id, error)
                self.journal.release(v.id, error)
            self.notify()

    def _upload(self, v: Version, worker: str) -> str | None:
        """Upload and publish one version `worker` claimed; returns the error text on failure."""
        try:
            if not self.journal.is_uploaded(v.id):
                file = self.cache.path(v.key)
                if v.size >= self.s3.multipart_threshold:
                    self.s3.abort_uploads_of(v.key)  # a multipart upload a crash left half done
                self.s3.upload_file(v.key, file, v.sha256, v.size)
                self.journal.mark_uploaded(v.id)
            with self.lock:
                current = self.journal.get(v.id)
                if current is None:  # deleted, or renamed onto a file (a new id) while uploading
                    if self.journal.has_key(v.key):  # renamed: its new row (still ours) goes on
                        self.journal.release_key(v.key, worker)
                    else:
                        self.s3.delete(v.key)
                    return None
                try:
                    # newest=False: a newer version published meanwhile (from another machine) stays
                    # the newest, and this one joins the path's history
                    self.catalog.insert_version(replace(current, state="uploaded"), newest=False)
                except AlreadyExists:
                    if self.catalog.get_version(v.id) is None:
                        raise
                # forget cached answers before the row goes: a reader that no longer finds it in the
                # journal must not get an answer fetched before it was published
                self.published(current.path)
                self.journal.remove([v.id])
            if not self.journal.has_key(v.key):
                self.cache.unpin(v.key)
                if self.cache.over_bound():
                    self.cache.evict()
            return None
        except FileNotFoundError as e:
            return f"the cached bytes of {v.path!r} are gone ({e.filename}): they cannot be uploaded"
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    # -- waiting ---------------------------------------------------------------------------

    def wait(self, done: Callable[[], bool], timeout: float | None = None,
             progress: Callable[[int, int], None] | None = None) -> bool:
        """Wait until `done()` holds (checked whenever an upload ends); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if progress is not None:
                n, size, _ = self.journal.counts()
                progress(n, size)
            if done():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            with self._changed:
                self._changed.wait(0.2 if left is None else min(0.2, left))

    def admit(self, size: int) -> None:
        """Wait while `size` more pending bytes would pass the cache's bound (a full staging area makes
        writes wait for uploads rather than fail); a version larger than the bound waits for an empty one."""
        def room() -> bool:
            n, pending, _ = self.journal.counts()
            return n == 0 or pending + size <= self.cache.bound

        if not room():
            log.warning("the cache holds %d bytes waiting for upload: a commit of %d bytes waits", self.journal.counts()[1],
                        size)
            self.wait(room)

    def wait_all(self, progress: Callable[[int, int], None] | None = None, timeout: float | None = None) -> bool:
        """Wait until nothing in this cache folder is pending."""
        return self.wait(lambda: self.journal.counts()[0] == 0, timeout, progress)

    def wait_paths(self, paths: list[str], timeout: float) -> None:
        """Wait until no version at or below any of `paths` is pending (before a remote rename)."""
        def done() -> bool:
            return not any(self.journal.history(p) or self.journal.any_below(p) for p in paths)

        if not self.wait(done, timeout):
            raise Unavailable(f"uploads of {', '.join(paths)} did not finish within {timeout:.0f} s "
                              "(is S3 or MongoDB reachable? see `mldashfs status`)")

    def status(self) -> dict[str, Any]:
        """Pending uploads (count, bytes, oldest commit time), the cache's use and bound, recent errors."""
        n, size, oldest = self.journal.counts()
        return {
            "pending": {"versions": n, "bytes": size, "oldest": oldest},
            "cache": {"folder": self.cache.folder, "bytes": self.cache.usage(), "bound": self.cache.bound},
            "errors": [{"at": at, "message": m} for at, m in self.journal.errors()],
        }

    def close(self) -> None:
        """Stop the uploaders (what is pending stays journaled for the next open)."""
        self._stop.set()
        self.notify()
        for t in self._threads:
            t.join(timeout=30)
