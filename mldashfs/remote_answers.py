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
