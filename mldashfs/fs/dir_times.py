"""Folder times changed through the mount that the catalog does not show, kept while the daemon runs.

The catalog moves a folder's mtime when a row below it is added, removed or renamed, but a file
created through the mount has no row until its first commit (or ever, if it is unlinked first), and
folders have no ctime column. So the daemon remembers, per folder inode, when an entry was last
created, removed or renamed in it through the mount (its mtime and ctime) and when it was last
chmod'ed or utime'd (its ctime), and shows the later of those and the catalog's times. After a
remount a folder shows the catalog's mtime as both.
"""

from __future__ import annotations

import pyfuse3


class DirTimes:
    """mtime and ctime (ns) per folder inode, overriding the catalog's when later; synchronous only."""

    def __init__(self) -> None:
        self._times: dict[int, tuple[int, int]] = {}  # inode -> (mtime, ctime); mtime 0: the catalog's

    def entries_changed(self, ino: int, now_ns: int) -> None:
        """An entry of folder `ino` was created, removed or renamed: mtime and ctime are now."""
        self._times[ino] = (now_ns, now_ns)

    def attrs_changed(self, ino: int, now_ns: int, mtime_set: bool) -> None:
        """Inode `ino` was chmod'ed or utime'd: ctime is now; a utime's mtime is the catalog's. (Files
        are recorded too, as the caller cannot tell them apart cheaply; harmless, since a chmod or
        utime moves a file's ctime in the catalog as well.)"""
        mtime = 0 if mtime_set else self._times.get(ino, (0, 0))[0]
        self._times[ino] = (mtime, now_ns)

    def apply(self, ino: int, a: pyfuse3.EntryAttributes) -> None:
        """Show folder `ino`'s remembered times in its attributes `a`, where later than the catalog's."""
        times = self._times.get(ino)
        if times is not None:
            a.st_mtime_ns = max(a.st_mtime_ns, times[0])
            a.st_ctime_ns = max(a.st_ctime_ns, a.st_mtime_ns, times[1])

    def forget(self, ino: int) -> None:
        """The inode is gone from the inode table."""
        self._times.pop(ino, None)
