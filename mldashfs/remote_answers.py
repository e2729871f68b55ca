"""A short-lived cache of a remote catalog's answers (what another machine's change may take to show).

Point lookups expire `ttl` seconds after they were fetched. A directory listing is cached page by
page, and all its pages stay fresh for `ttl` after its latest page was fetched, so a listing that
takes longer than `ttl` (10,000 files from a slow MongoDB) can still be answered again from memory.
Changes made on this machine forget the answers they may have changed, and an answer whose fetch
overlapped a forget is not kept (it may predate the change).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import cachetools

from .paths import split

#: Most names a folder may hold for `KnownNames` to keep them (a bigger one is asked name by name).
FOLDER_NAMES = 1000


class RemoteAnswers:
    """Cached answers of one remote catalog, keyed by method and path."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._points: cachetools.TTLCache[tuple[Any, ...], Any] = cachetools.TTLCache(maxsize=200_000, ttl=ttl)
        self._pages: dict[tuple[str, str], tuple[float, dict[str | None, tuple[int, list[Any]]]]] = {}
        self._lock = threading.Lock()
        self._forgotten = 0  # counts `forget` and `clear`: an answer fetched across one is not kept

    def point(self, method: str, path: str, fetch: Callable[[], Any]) -> Any:
        """`fetch()`'s answer about `path`, reused for `ttl` seconds."""
        key = (method, path)
        with self._lock:
            if key in self._points:
                return self._points[key]
            before = self._forgotten
        value = fetch()
        with self._lock:
            if self._forgotten == before:
                self._points[key] = value
        return value

    def page(self, method: str, path: str, after: str | None, limit: int,
             fetch: Callable[[], list[Any]]) -> list[Any]:
        """Up to `limit` listed rows of `path` after `after`; a cached page fetched with a larger limit
        (or that reached the end of the folder) answers too."""
        now = time.monotonic()
        with self._lock:
            expires, pages = self._pages.get((method, path), (0.0, {}))
            if expires > now and after in pages:
                fetched_limit, rows = pages[after]
                if len(rows) >= limit or len(rows) < fetched_limit:
                    return rows[:limit]
            before = self._forgotten
        rows = fetch()
        with self._lock:
            if self._forgotten != before:
                return rows
            expires, pages = self._pages.get((method, path), (0.0, {}))
            if expires <= now:
                pages = {}
            pages[after] = (limit, rows)
            self._pages[(method, path)] = (time.monotonic() + self.ttl, pages)
        return rows

    def forget(self, path: str) -> None:
        """Forget what a change at `path` may have changed: the path, its folders and their listings."""
        paths = {path}
        p = path
        while p:
            p = split(p)[0]
            paths.add(p)
        with self._lock:
            self._forgotten += 1
            for key in [k for k in self._points if k[1] in paths]:
                del self._points[key]
            for key in [k for k in self._pages if k[1] in paths]:
                del self._pages[key]

    def clear(self) -> None:
        with self._lock:
            self._forgotten += 1
            self._points.clear()
            self._pages.clear()


class KnownNames:
    """Every name in a remote folder, from one listing, kept for `ttl` seconds: a commit of a name not
    among them asks MongoDB nothing, so a run of saves into one folder costs one listing per `ttl`
    instead of one lookup per file. As stale as a point answer (both are at most `ttl` old); names this
    machine publishes meanwhile count as present; any other change made here forgets them all."""

    def __init__(self, ttl: float, limit: int = FOLDER_NAMES) -> None:
        self.ttl = ttl
        self.limit = limit
        self._folders: dict[str, tuple[float, float, frozenset[str] | None]] = {}  # -> (listed, expires, names)
        self._published: dict[str, float] = {}  # path -> when this machine published a version of it
        self._lock = threading.Lock()

    def absent(self, path: str, list_names: Callable[[str, int], list[str]]) -> bool:
        """Whether the remote folder of `path` surely has no entry named like it; `list_names(folder,
        limit)` gives up to `limit` names (asked once per folder and `ttl`)."""
        folder, name = split(path)
        now = time.monotonic()
        with self._lock:
            listed, expires, names = self._folders.get(folder, (0.0, 0.0, None))
        if expires <= now:
            found = list_names(folder, self.limit)
            listed, names = now, frozenset(found) if len(found) < self.limit else None  # too big: ask by name
            with self._lock:
                self._folders[folder] = (listed, now + self.ttl, names)
                self._prune(now)
        if names is None or name in names:
            return False
        with self._lock:
            return self._published.get(path, -1.0) < listed

    def is_folder(self, folder: str) -> bool:
        """Whether a listing of `folder` within the TTL found entries in it (then it is a directory)."""
        with self._lock:
            _, expires, names = self._folders.get(folder, (0.0, 0.0, frozenset()))
        return expires > time.monotonic() and (names is None or bool(names))

    def published(self, path: str) -> None:
        """This machine published a version of `path`: a listing made before then may lack it."""
        with self._lock:
            self._published[path] = time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._folders.clear()

    def _prune(self, now: float) -> None:
        """Forget folders and publishes older than any listing still in use (caller holds the lock)."""
        for folder in [f for f, (_, expires, _) in self._folders.items() if expires <= now]:
            del self._folders[folder]
        oldest = min((listed for listed, _, _ in self._folders.values()), default=now)
        for path in [p for p, t in self._published.items() if t < oldest - 1.0]:
            del self._published[path]
