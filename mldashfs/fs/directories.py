"""Open directory handles: listings served a page of `Store.list_stats` at a time, so memory stays flat.

The kernel asks for entries from an offset; offsets are positions in the sorted listing. A handle
keeps the rows from the kernel's last offset on: what one reply did not take, plus what a read-ahead
fetched (`read_ahead`) while the kernel took in that reply. Reading on past them fetches the next
page after the last name fetched; going back (seekdir) starts again from the beginning. A stored
row comes with its attributes, made in the fetching thread, so the reply only adds the inode. The
`.versions` views are small and listed whole.
"""

from __future__ import annotations

import pyfuse3
import trio

from ..paths import hidden_in
from ..records import Dir, Stat, Version
from ..store import Store
from .attributes import listed
from .versions_view import child, parse

PAGE = 1000
#: At most this many rows are fetched past the kernel's offset (a few hundred bytes each).
MAX_AHEAD = 16 * PAGE
#: (name, what it is, its attributes but the inode, for a stored row); what it is None: created
#: through the mount, not committed.
Row = tuple[str, Stat | Version | Dir | None, pyfuse3.EntryAttributes | None]


class DirHandle:
    """One opendir of one path; `extra` names files created through the mount but not committed yet.

    An extra name is listed after the stored ones unless a page of the listing already held it
    (its commit landed before that page was read), so a file is never listed twice or missed.
    `lock` is held by whoever fetches for the handle (a readdir or a read-ahead) across the thread hop;
    `requests` counts the readdirs served, so a read-ahead the kernel overtook does nothing.
    """

    def __init__(self, path: str, rows: list[Row] | None, extra: list[Row], owner: tuple[int, int]) -> None:
        self.path = path
        self.lock = trio.Lock()
        self.requests = 0
        self._owner = owner  # uid, gid of the listed entries
        self._fixed = rows
        self._extra = extra
        self._rows: list[Row] = []  # fetched rows from position _start on
        self._start = 0
        self._last: str | None = None  # the last name fetched
        self._done = False

    @classmethod
    def open(cls, store: Store, path: str, created: list[str], owner: tuple[int, int]) -> DirHandle:
        """A handle for `path` (blocking: lists the `.versions` views at once)."""
        vp = parse(path)
        extra: list[Row] = [(p.rsplit("/", 1)[-1], None, None) for p in created]
        if vp is None:
            return cls(path, None, extra, owner)
        if vp.file is None:
            rows: list[Row] = []
            after = None
            while entries := store.listdir(vp.dir, after=after, limit=PAGE):
                rows += [(e.name, Dir(child(path, e.name), e.version.mtime, 0o555), None)
                         for e in entries if e.version is not None]
                after = entries[-1].name
            return cls(path, rows, [], owner)
        return cls(path, [(v.id_str, v, None) for v in store.history(vp.file_path)], [], owner)

    def cached_rows(self, index: int) -> list[Row] | None:
        """Rows from `index` on that need no Store call ([] at the end), or None if a fetch is needed."""
        if self._fixed is not None:
            return self._fixed[index:]
        end = self._start + len(self._rows)
        if self._start <= index < end:
            return self._rows[index - self._start :]
        if self._done and index >= end:
            return self._extra[index - end :]
        return None

    def fetch(self, store: Store, index: int, until: int = 0) -> list[Row]:
        """Fetch pages until the rows at `index` and at `until` (at most MAX_AHEAD further) are here
        or the listing ends (blocking), and return the rows from `index` on; earlier rows are let go."""
        if index < self._start:
            self._rows, self._start, self._last, self._done = [], 0, None, False
        gone = min(index - self._start, len(self._rows))
        del self._rows[:gone]
        self._start += gone
        last = min(max(index, until), index + MAX_AHEAD)
        while not self._done and last >= self._start + len(self._rows):
            stats = store.list_stats(self.path, after=self._last, limit=PAGE)
            uid, gid = self._owner
            hidden = hidden_in(self.path)  # an experiment's .ml_dash/ (paths.RUN_DATA): found by name only
            self._rows += [(st.name, st, listed(0, st, uid, gid)) for st in stats if st.name not in hidden]
            self._done = len(stats) < PAGE
            if stats:
                self._last = stats[-1].name
            if self._extra:
                names = {st.name for st in stats}
                self._extra = [row for row in self._extra if row[0] not in names]
        return self.cached_rows(index) or []

    def read_ahead(self, store: Store, index: int, until: int) -> None:
        """Fetch up to `until` after a reply of the rows from `index` on (some of which that reply's
        own fetches may have let go), for the kernel's next readdir (blocking); nothing for a fixed view."""
        if self._fixed is None:
            self.fetch(store, max(index, self._start), until)
