"""The inode <-> store path table: stable inode numbers per path while the daemon runs.

Invariants (kept by synchronous methods only, so no `await` can split an update):
- one path has at most one inode and one inode at most one path (`paths` and `inodes` mirror);
- an inode whose path was unlinked or replaced, or moved away from its page-cache readers (see
  page_cache.py), is *detached*: it keeps its last attributes for the kernel's remaining lookups
  and open handles, and is dropped when its lookup count is 0 (at once if the kernel never had it);
  one whose path was unlinked or replaced is also *unlinked*: its link count is 0, as on a local disk;
- inode numbers are never reused, so the FUSE generation number can stay 0.

Each inode costs a few dict entries and no object of its own: a readdir of 100,000 files gives
the kernel 100,000 inodes, and the table's memory grows with them (see README, "Speed").
"""

from __future__ import annotations

import stat
import time

import pyfuse3

from ..paths import split


class InodeTable:
    """Maps store paths to inode numbers and back, with lookup counts and a short attribute cache."""

    def __init__(self, root: str, attr_ttl: float) -> None:
        self.attr_ttl = attr_ttl
        self._next = pyfuse3.ROOT_INODE + 1
        self.paths: dict[int, str | None] = {pyfuse3.ROOT_INODE: root}  # every live inode; None: detached
        self.inodes: dict[str, int] = {root: pyfuse3.ROOT_INODE}
        self._lookups: dict[int, int] = {pyfuse3.ROOT_INODE: 1}  # the kernel's references, if any
        self._attrs: dict[int, tuple[pyfuse3.EntryAttributes, float]] = {}  # attributes, valid until
        self._children: dict[str, set[str]] = {}  # parent path -> paths below it that have an inode
        self._unlinked: set[int] = set()  # detached inodes whose path was unlinked or replaced

    def path(self, ino: int) -> str | None:
        """The path of `ino`, or None if it is detached or unknown."""
        return self.paths.get(ino)

    def links(self, ino: int) -> int:
        """`st_nlink` of a file: 0 once its path was unlinked or replaced (handles may keep it open)."""
        return 0 if ino in self._unlinked else 1

    def ino(self, path: str, parent: str | None = None) -> int:
        """The inode of `path` (in directory `parent`, if the caller knows it), allocating one the
        first time the path is seen."""
        ino = self.inodes.get(path)
        if ino is None:
            ino = self._next
            self._next += 1
            self._add(path, ino, parent)
        return ino

    def _add(self, path: str, ino: int, parent: str | None = None) -> None:
        self.paths[ino] = path
        self.inodes[path] = ino
        kids = self._children.get(parent := split(path)[0] if parent is None else parent)
        if kids is None:
            self._children[parent] = {path}
        else:
            kids.add(path)

    def _remove(self, path: str) -> int:
        ino = self.inodes.pop(path)
        parent = split(path)[0]
        kids = self._children.get(parent)
        if kids is not None:
            kids.discard(path)
            if not kids:
                del self._children[parent]
        return ino

    def _subtree(self, path: str) -> list[str]:
        """`path` and every path below it that has an inode (walks the children index, not the table)."""
        out, todo = [], [path]
        while todo:
            p = todo.pop()
            if p in self.inodes:
                out.append(p)
            todo.extend(self._children.get(p, ()))
        return out

    def looked_up(self, ino: int) -> None:
        """The kernel now holds one more reference to `ino` (lookup, create, mkdir, readdirplus)."""
        self._lookups[ino] = self._lookups.get(ino, 0) + 1

    def forget(self, ino: int, n: int) -> None:
        """The kernel dropped `n` references; an inode nobody references is removed from the table."""
        if ino == pyfuse3.ROOT_INODE or ino not in self.paths:
            return
        left = self._lookups.get(ino, 0) - n
        if left > 0:
            self._lookups[ino] = left
            return
        self._lookups.pop(ino, None)
        self._attrs.pop(ino, None)
        self._unlinked.discard(ino)
        path = self.paths.pop(ino)
        if path is not None and self.inodes.get(path) == ino:
            self._remove(path)

    def cached(self, ino: int) -> pyfuse3.EntryAttributes | None:
        """Attributes cached for `ino` within the last `attr_ttl` seconds (detached inodes: always)."""
        entry = self._attrs.get(ino)
        if entry is None:
            return None
        if self.paths.get(ino) is None or time.monotonic() < entry[1]:
            return entry[0]
        return None

    def sent_size(self, ino: int) -> int | None:
        """The size last sent to the kernel for `ino` by a lookup or getattr (None: not known, e.g.
        only listed by readdir), however old: the kernel may still hold it."""
        entry = self._attrs.get(ino)
        return entry[0].st_size if entry is not None else None

    def sent_type(self, ino: int) -> int | None:
        """The file type (S_IFMT bits) last sent for `ino` by a lookup or getattr, like `sent_size`."""
        entry = self._attrs.get(ino)
        return stat.S_IFMT(entry[0].st_mode) if entry is not None else None

    def remember(self, ino: int, attrs: pyfuse3.EntryAttributes) -> None:
        """Cache the attributes just sent to the kernel for `ino`."""
        if ino in self.paths:
            self._attrs[ino] = (attrs, time.monotonic() + self.attr_ttl)

    def invalidate(self, ino: int) -> None:
        """Drop the cached attributes of `ino` (its file changed); a detached inode keeps them."""
        entry = self._attrs.get(ino)
        if entry is not None:
            self._attrs[ino] = (entry[0], 0.0)

    def detach(self, path: str, unlinked: bool = True) -> None:
        """`path` and everything below it are gone (`unlinked`, or moved to new inodes): their inodes
        keep living without a path while the kernel references them; one it never got (readdir
        stopped at a full buffer) is dropped."""
        for p in self._subtree(path):
            ino = self._remove(p)
            if ino in self._lookups:
                self.paths[ino] = None
                if unlinked:
                    self._unlinked.add(ino)
                    entry = self._attrs.get(ino)
                    if entry is not None:
                        entry[0].st_nlink = 0
            else:
                del self.paths[ino]
                self._attrs.pop(ino, None)

    def move(self, src: str, dst: str) -> None:
        """`src` (and everything below it) is now `dst`; whatever was at `dst` is detached first."""
        self.detach(dst)
        for p in self._subtree(src):
            ino = self._remove(p)
            self._add(dst + p[len(src):], ino)
            self.invalidate(ino)
