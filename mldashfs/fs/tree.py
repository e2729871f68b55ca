"""The mount's view of the Store: stored files and directories plus the read-only `.versions` view.

Catalog reads here run on the trio loop: the local catalog is SQLite in WAL mode, where readers
are never blocked by writers and a read takes tens of microseconds, less than a hop to a worker
thread. Methods that write (`delete_version`, `truncate`) are called through a worker thread.
"""

from __future__ import annotations

import errno

import pyfuse3

from ..errors import NotFound
from ..records import Dir, Version
from ..store import Store
from .versions_view import VersionsPath, parse


class Tree:
    """Resolves mount paths (store paths, possibly inside `.versions`) through one Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def resolve(self, path: str) -> Version | Dir:
        """What `path` is in the store or in the `.versions` view (NotFound if nothing)."""
        try:
            vp = parse(path)
        except ValueError:
            raise NotFound(path) from None
        if vp is None:
            return self.store.stat(path)
        if vp.file is None:
            d = self.store.stat(vp.dir)
            if not isinstance(d, Dir):
                raise NotFound(path)
            return Dir(path, d.mtime, 0o555)
        if vp.version_id is None:
            newest = self.store.history(vp.file_path)[-1]
            return Dir(path, newest.mtime, 0o555)
        v = self.store.get_version(vp.version_id)
        if v.path != vp.file_path:
            raise NotFound(path)
        return v

    def exists(self, path: str) -> bool:
        """True if `path` is a stored file or directory."""
        try:
            self.store.stat(path)
        except NotFound:
            return False
        return True

    def delete_version(self, vp: VersionsPath) -> None:
        """unlink of `<dir>/.versions/<file>/<id>`: delete that one version (blocking)."""
        if vp.version_id is None:
            raise pyfuse3.FUSEError(errno.EROFS)
        v = self.store.get_version(vp.version_id)
        if v.path != vp.file_path:
            raise NotFound(str(vp.version_id))
        self.store.delete_version(v.id)

    def truncate(self, path: str, size: int) -> None:
        """truncate(2) of a file nobody has open for writing: a new version of the new size (blocking)."""
        v = self.store.latest(path)
        if v.size == size:
            return
        staged = self.store.stage(v if size else None)
        try:
            staged.truncate(size)
        except BaseException:
            staged.discard()
            raise
        self.store.commit(path, staged)
