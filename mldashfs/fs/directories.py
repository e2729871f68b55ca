"""Open directory handles: listings served a page of `Store.list_stats` at a time, so memory stays flat.

The kernel asks for entries from an offset; offsets are positions in the sorted listing. A handle
keeps one page; reading on past it fetches the next page after the page's last name, and going
back (seekdir) starts again from the beginning. The `.versions` views are small and listed whole.
"""

from __future__ import annotations

from ..records import Dir, Stat, Version
from ..store import Store
from .versions_view import child, parse

PAGE = 1000
Row = tuple[str, Stat | Version | Dir | None]  # None: created through the mount, not committed


class DirHandle:
    """One opendir of one path; `extra` names files created through the mount but not committed yet.

    An extra name is listed after the stored ones unless a page of the listing already held it
    (its commit landed before that page was read), so a file is never listed twice or missed.
    """

    def __init__(self, path: str, rows: list[Row] | None, extra: list[Row]) -> None:
        self.path = path
        self._fixed = rows
        self._extra = extra
        self._page: list[Row] = []
        self._start = 0
        self._done = False

    @classmethod
    def open(cls, store: Store, path: str, created: list[str]) -> DirHandle:
        """A handle for `path` (blocking: lists the `.versions` views at once)."""
        vp = parse(path)
        extra: list[Row] = [(p.rsplit("/", 1)[-1], None) for p in created]
        if vp is None:
            return cls(path, None, extra)
        if vp.file is None:
            rows: list[Row] = []
            after = None
            while entries := store.listdir(vp.dir, after=after, limit=PAGE):
                rows += [(e.name, Dir(child(path, e.name), e.version.mtime, 0o555))
                         for e in entries if e.version is not None]
                after = entries[-1].name
            return cls(path, rows, [])
        return cls(path, [(v.id_str, v) for v in store.history(vp.file_path)], [])

    def cached_rows(self, index: int) -> list[Row] | None:
        """Rows from `index` on that need no Store call ([] at the end), or None if a fetch is needed."""
        if self._fixed is not None:
            return self._fixed[index:]
        end = self._start + len(self._page)
        if self._start <= index < end:
            return self._page[index - self._start :]
        if self._done and index >= end:
            return self._extra[index - end :]
        return None

    def fetch(self, store: Store, index: int) -> list[Row]:
        """Fetch pages until `index` is covered (blocking) and return the rows from there."""
        if index < self._start:
            self._page, self._start, self._done = [], 0, False
        while not self._done and index >= self._start + len(self._page):
            after = self._page[-1][0] if self._page else None
            if after is None and self._start:
                break
            stats = store.list_stats(self.path, after=after, limit=PAGE)
            self._start += len(self._page)
            self._page = [(st.name, st) for st in stats]
            self._done = len(stats) < PAGE
            if self._extra:
                listed = {st.name for st in stats}
                self._extra = [row for row in self._extra if row[0] not in listed]
        return self.cached_rows(index) or []
