"""The pyfuse3 `Operations` of mldashfs: each handler resolves the inode, calls the Store, translates.

Blocking work (Store calls, disk reads/writes, hashing at commit) runs in worker threads
(`trio.to_thread`), so a big write never stalls `ls`. Errors cross the FUSE boundary in one place,
`_fuse_errors`. The inode and handle tables are only changed by synchronous code between awaits.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import pyfuse3
import trio

from ..errors import NotFound, NotPermitted, StoreError
from ..paths import EXPERIMENT_DEPTH, check_name, depth, split
from ..records import Dir, Version
from ..store import Store, check_description, check_metadata, check_tags
from . import attributes, xattrs
from .directories import DirHandle
from .handles import HandleTable, ReadHandle, WriteHandle
from .inodes import InodeTable
from .page_cache import WRITER, PageCache
from .versions_view import VersionsPath, child, parse

log = logging.getLogger("mldashfs.fs")
P = ParamSpec("P")
R = TypeVar("R")


def _fuse_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The one error boundary: StoreError/OSError -> their errno, anything else -> EIO and a log line."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except StoreError as e:
            log.info("%s: %s (%s)", fn.__name__, e, errno.errorcode.get(e.errno, e.errno))
            raise pyfuse3.FUSEError(e.errno) from None
        except xattrs.XattrError as e:
            raise pyfuse3.FUSEError(e.errno) from None
        except OSError as e:
            log.warning("%s: %s", fn.__name__, e)
            raise pyfuse3.FUSEError(e.errno or errno.EIO) from None
        except Exception:
            log.exception("%s failed unexpectedly", fn.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


async def _run(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run a blocking call in a worker thread."""
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def _name(raw: bytes) -> str:
    return check_name(os.fsdecode(raw))


def _fail(code: int, why: str, *args: object) -> pyfuse3.FUSEError:
    log.info(why, *args)
    return pyfuse3.FUSEError(code)


class Operations(pyfuse3.Operations):
    """POSIX calls on the mount -> Store calls; `root` is the store path shown at the mount root."""

    supports_dot_lookup = True
    enable_writeback_cache = False

    def __init__(self, store: Store, root: str = "") -> None:
        super().__init__()
        self.store = store
        self.uid, self.gid = os.getuid(), os.getgid()
        self.inodes = InodeTable(root, attr_ttl=attributes.TIMEOUT)
        self.files = HandleTable()
        self.dirs: dict[int, DirHandle] = {}
        self.cache = PageCache()
        self._dir_numbers = iter(range(1, 1 << 62))

    # -- resolving -------------------------------------------------------------------------

    def _path(self, ino: int) -> str:
        path = self.inodes.path(ino)
        if path is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return path

    def _resolve(self, path: str) -> Version | Dir:
        """What `path` is in the store or in the `.versions` view (blocking)."""
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

    def _attrs(self, ino: int, obj: Version | Dir | None, path: str) -> pyfuse3.EntryAttributes:
        """Attributes of `ino`, with an open writer's size and mtime taking precedence."""
        w = self.files.uncommitted_writer(ino)
        if w is not None:
            mode = w.attrs.get("mode", obj.mode if isinstance(obj, Version) else 0o644)
            a = attributes.make(ino, is_dir=False, size=w.size(), mtime=w.attrs.get("mtime", w.mtime),
                                mode=mode, uid=self.uid, gid=self.gid)
        elif obj is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        else:
            a = attributes.of(ino, obj, self.uid, self.gid, read_only=parse_safe(path) is not None)
        self.inodes.remember(ino, a)
        return a

    async def _entry(self, path: str) -> pyfuse3.EntryAttributes:
        """Look `path` up (store or an open writer) and count one kernel reference to it."""
        ino = self.inodes.inodes.get(path)
        try:
            obj: Version | Dir | None = await _run(self._resolve, path)
        except NotFound:
            if ino is None or self.files.uncommitted_writer(ino) is None:
                raise
            obj = None
        ino = self.inodes.ino(path)
        a = self._attrs(ino, obj, path)
        self.inodes.looked_up(ino)
        return a

    # -- lookup and attributes -------------------------------------------------------------

    @_fuse_errors
    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        parent = self._path(parent_inode)
        if name == b".":
            return await self._entry(parent)
        if name == b"..":
            return await self._entry(split(parent)[0] if parent_inode != pyfuse3.ROOT_INODE else parent)
        return await self._entry(child(parent, _name(name)))

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, n in inode_list:
            self.inodes.forget(ino, n)
            if self.inodes.path(ino) is None and ino not in self.files.writers:
                self.cache.forget(ino)

    @_fuse_errors
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if self.files.uncommitted_writer(inode) is None:
            cached = self.inodes.cached(inode)
            if cached is not None:
                return cached
        path = self._path(inode)
        try:
            obj: Version | Dir | None = await _run(self._resolve, path)
        except NotFound:
            obj = None
        return self._attrs(inode, obj, path)

    @_fuse_errors
    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields,
                      fh: int | None, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        path = self._path(inode)
        if parse_safe(path) is not None:
            raise _fail(errno.EROFS, "setattr %s: the .versions view is read-only", path)
        if (fields.update_uid and attr.st_uid != self.uid) or (fields.update_gid and attr.st_gid != self.gid):
            raise _fail(errno.EPERM, "setattr %s: changing the owner is not supported", path)
        handle = self.files.handles.get(fh) if fh is not None else None
        writer = handle if isinstance(handle, WriteHandle) else self.files.writer(inode)
        if fields.update_size:
            if writer is not None:
                await self._truncate(writer, attr.st_size)
            else:
                await _run(self._truncate_committed, path, attr.st_size)
                self.inodes.invalidate(inode)
        changes: dict[str, Any] = {}
        if fields.update_mode:
            changes["mode"] = attr.st_mode & 0o7777
        if fields.update_mtime:
            changes["mtime"] = attr.st_mtime_ns / 1e9
        if changes:
            pending = self.files.uncommitted_writer(inode)
            if pending is not None:
                pending.attrs.update(changes)
            if pending is None or not pending.created:
                await _run(self.store.set_attrs, path, **changes)
            self.inodes.invalidate(inode)
        return await self.getattr(inode, ctx)

    def _truncate_committed(self, path: str, size: int) -> None:
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

    # -- directories -----------------------------------------------------------------------

    @_fuse_errors
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        path = self._path(inode)
        obj = await _run(self._resolve, path)
        if not isinstance(obj, Dir):
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        extra = [self.inodes.path(i) for i, ws in self.files.writers.items() if any(w.created for w in ws)]
        handle = await _run(DirHandle.open, self.store, path, [p for p in extra if p and split(p)[0] == path])
        fh = next(self._dir_numbers)
        self.dirs[fh] = handle
        return fh

    @_fuse_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        handle = self.dirs[fh]
        index = start_id
        while True:
            rows = handle.cached_rows(index)
            if rows is None:
                rows = await _run(handle.fetch, self.store, index)
            if not rows:
                return
            for name, obj in rows:
                path = child(handle.path, name)
                ino = self.inodes.ino(path)
                try:
                    a = self._attrs(ino, obj, path)
                except pyfuse3.FUSEError:
                    index += 1
                    continue
                if not pyfuse3.readdir_reply(token, os.fsencode(name), a, index + 1):
                    return
                self.inodes.looked_up(ino)
                index += 1

    async def releasedir(self, fh: int) -> None:
        self.dirs.pop(fh, None)

    @_fuse_errors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        path = child(self._path(parent_inode), _name(name))
        if parse_safe(path) is not None:
            raise _fail(errno.EROFS, "mkdir %s: the .versions view is read-only", path)
        await _run(self.store.mkdir, path)
        return await self._entry(path)

    @_fuse_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        path = child(self._path(parent_inode), _name(name))
        if parse_safe(path) is not None:
            raise _fail(errno.EROFS, "rmdir %s: the .versions view is read-only", path)
        await _run(self.store.rmdir, path)
        self.inodes.detach(path)

    # -- names -----------------------------------------------------------------------------

    @_fuse_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        path = child(self._path(parent_inode), _name(name))
        vp = parse_safe(path)
        if vp is not None:
            await _run(self._delete_version, vp)
            self.inodes.detach(path)
            return
        ino = self.inodes.inodes.get(path)
        try:
            await _run(self.store.delete, path)
        except NotFound:
            if ino is None or not any(w.created for w in self.files.writers.get(ino, [])):
                raise
        self.inodes.detach(path)

    def _delete_version(self, vp: VersionsPath) -> None:
        if vp.version_id is None:
            raise pyfuse3.FUSEError(errno.EROFS)
        v = self.store.get_version(vp.version_id)
        if v.path != vp.file_path:
            raise NotFound(str(vp.version_id))
        self.store.delete_version(v.id)

    @_fuse_errors
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: pyfuse3.RequestContext) -> None:
        src = child(self._path(parent_inode_old), _name(name_old))
        dst = child(self._path(parent_inode_new), _name(name_new))
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise _fail(errno.EINVAL, "rename %s <-> %s: RENAME_EXCHANGE is not supported", src, dst)
        if parse_safe(src) is not None or parse_safe(dst) is not None:
            raise _fail(errno.EROFS, "rename %s -> %s: the .versions view is read-only", src, dst)
        replace = not flags & pyfuse3.RENAME_NOREPLACE
        ino = self.inodes.inodes.get(src)
        try:
            await _run(self.store.rename, src, dst, replace=replace)
        except NotFound:
            # A file created through the mount and still open has no version yet: move its inode only.
            if ino is None or not any(w.created for w in self.files.writers.get(ino, [])):
                raise
            if not replace and await _run(self._exists, dst):
                raise pyfuse3.FUSEError(errno.EEXIST) from None
        self.inodes.move(src, dst)

    def _exists(self, path: str) -> bool:
        try:
            self.store.stat(path)
        except NotFound:
            return False
        return True

    @_fuse_errors
    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        raise _fail(errno.EPERM, "symlink %r: symbolic links are not supported", name)

    @_fuse_errors
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes,
                   ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        raise _fail(errno.EPERM, "link %r: hard links are not supported", new_name)

    @_fuse_errors
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        raise _fail(errno.EPERM, "mknod %r: device nodes and fifos are not supported", name)

    @_fuse_errors
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        st = await _run(self.store.statvfs)
        s = pyfuse3.StatvfsData()
        s.f_bsize, s.f_frsize = st.f_bsize, st.f_frsize
        s.f_blocks, s.f_bfree, s.f_bavail = st.f_blocks, st.f_bfree, st.f_bavail
        s.f_files, s.f_ffree, s.f_favail = st.f_files, st.f_ffree, st.f_favail
        s.f_namemax = 255
        return s

    # -- files -----------------------------------------------------------------------------

    @_fuse_errors
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: pyfuse3.RequestContext) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        path = child(self._path(parent_inode), _name(name))
        if parse_safe(path) is not None:
            raise _fail(errno.EROFS, "create %s: the .versions view is read-only", path)
        base = await _run(self._latest_or_none, path)
        if base is None and depth(path) <= EXPERIMENT_DEPTH:
            raise NotPermitted(f"{path!r}: files live inside an experiment (namespace/project/experiment/...)")
        ino = self.inodes.ino(path)
        w = WriteHandle(ino, None, self.cache.open(ino, WRITER), created=base is None, pending=True,
                        mtime=time.time())
        if base is None:
            w.attrs["mode"] = mode & 0o7777 & ~ctx.umask
        fh = self.files.add(w)
        a = self._attrs(ino, base, path)
        self.inodes.looked_up(ino)
        return self._info(fh, w.cache), a

    def _latest_or_none(self, path: str) -> Version | None:
        try:
            return self.store.latest(path)
        except NotFound:
            return None

    @staticmethod
    def _info(fh: int, cache: Any) -> pyfuse3.FileInfo:
        return pyfuse3.FileInfo(fh=fh, keep_cache=cache.keep_cache, direct_io=cache.direct_io)

    @_fuse_errors
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        path = self._path(inode)
        writing = flags & os.O_ACCMODE != os.O_RDONLY or bool(flags & os.O_TRUNC)
        vp = parse_safe(path)
        if vp is not None:
            if writing:
                raise _fail(errno.EROFS, "open %s for writing: versions are read-only", path)
            obj = await _run(self._resolve, path)
            if not isinstance(obj, Version):
                raise pyfuse3.FUSEError(errno.EISDIR)
            return await self._open_reader(inode, obj)
        pending = self.files.uncommitted_writer(inode)
        if pending is not None and pending.created:
            version = None
        else:
            version = await _run(self.store.latest, path)
        if not writing:
            return await self._open_reader(inode, version)
        truncate = bool(flags & os.O_TRUNC)
        w = WriteHandle(inode, None if truncate else version, self.cache.open(inode, WRITER),
                        pending=truncate, mtime=time.time())
        return self._info(self.files.add(w), w.cache)

    async def _open_reader(self, inode: int, version: Version | None) -> pyfuse3.FileInfo:
        cache = self.cache.open(inode, version.id if version else WRITER)
        try:
            handle = await _run(ReadHandle, inode, self.store, version, cache)
        except BaseException:
            self.cache.close(inode, cache)
            raise
        return self._info(self.files.add(handle), cache)

    @_fuse_errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        handle = self.files.handles[fh]
        if isinstance(handle, ReadHandle):
            return await _run(handle.read, off, size)
        async with handle.lock:
            await self._stage(handle)
            assert handle.staged is not None
            return await _run(handle.staged.read, off, size)

    async def _stage(self, w: WriteHandle) -> None:
        """Give `w` a staged copy of its base if it has none (caller holds `w.lock`)."""
        if w.staged is None:
            w.staged = await _run(self.store.stage, w.base, split(self._path(w.ino))[1])

    @_fuse_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        w = self.files.handles[fh]
        if not isinstance(w, WriteHandle):
            raise pyfuse3.FUSEError(errno.EBADF)
        async with w.lock:
            await self._stage(w)
            assert w.staged is not None
            n = await _run(w.staged.write, off, buf)
        w.mtime = time.time()
        w.attrs.pop("mtime", None)
        self.cache.changed(w.ino, w.cache)
        return n

    async def _truncate(self, w: WriteHandle, size: int) -> None:
        async with w.lock:
            await self._stage(w)
            assert w.staged is not None
            await _run(w.staged.truncate, size)
        w.mtime = time.time()
        self.cache.changed(w.ino, w.cache)

    async def _commit(self, w: WriteHandle) -> None:
        """Make `w`'s bytes the newest version of its path (caller holds `w.lock`)."""
        path = self.inodes.path(w.ino)
        if w.staged is None:
            await self._stage(w)
        assert w.staged is not None
        staged, w.staged = w.staged, None
        if path is None:  # unlinked or replaced while open: its bytes go nowhere
            await _run(staged.discard)
            w.pending = False
            return
        v = await _run(self.store.commit, path, staged, **w.changes, **w.attrs)
        w.base, w.pending, w.created = v, False, False
        w.changes.clear()
        w.attrs.clear()
        self.inodes.invalidate(w.ino)
        self.cache.committed(w.ino, w.cache, v.id)
        log.debug("committed %s version %s (%d bytes)", path, v.id, v.size)

    @_fuse_errors
    async def flush(self, fh: int) -> None:
        w = self.files.handles.get(fh)
        if isinstance(w, WriteHandle):
            async with w.lock:
                if w.staged is not None and w.staged.dirty:
                    await self._commit(w)

    @_fuse_errors
    async def release(self, fh: int) -> None:
        handle = self.files.handles[fh]
        try:
            if isinstance(handle, ReadHandle):
                handle.close()
                return
            async with handle.lock:
                if handle.uncommitted:
                    await self._commit(handle)
                elif handle.staged is not None:
                    staged, handle.staged = handle.staged, None
                    await _run(staged.discard)
        finally:
            self.files.pop(fh)
            self.cache.close(handle.ino, handle.cache)

    @_fuse_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        w = self.files.handles.get(fh)
        if isinstance(w, WriteHandle) and w.staged is not None:
            async with w.lock:
                if w.staged is not None:
                    await _run(w.staged.fsync)

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        return None

    async def commit_all(self) -> None:
        """Commit every writer still open (at unmount, when the kernel sends no more releases)."""
        for fh in list(self.files.handles):
            await self.release(fh)

    # -- extended attributes ---------------------------------------------------------------

    async def _xattr_target(self, inode: int) -> tuple[dict[str, Any], Version | None, WriteHandle | None]:
        """(editable fields, version, uncommitted writer) of a file; ENOTSUP-style errors for dirs."""
        path = self._path(inode)
        w = self.files.uncommitted_writer(inode)
        if w is not None and w.created:
            obj: Version | Dir | None = None
        else:
            obj = await _run(self._resolve, path)
        if isinstance(obj, Dir):
            return {}, None, None
        fields = xattrs.fields_of(obj)
        if w is not None:
            fields.update(w.changes)
        return fields, obj, w

    @_fuse_errors
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        fields, version, w = await self._xattr_target(inode)
        if not fields:
            raise pyfuse3.FUSEError(errno.ENODATA)
        return xattrs.get(fields, version if w is None else None, xattrs.decode_name(name))

    @_fuse_errors
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        fields, version, w = await self._xattr_target(inode)
        if not fields:
            return []
        return xattrs.names(fields, version if w is None else None)

    @_fuse_errors
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self._change_xattr(inode, xattrs.decode_name(name), value)

    @_fuse_errors
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self._change_xattr(inode, xattrs.decode_name(name), None)

    async def _change_xattr(self, inode: int, name: str, value: bytes | None) -> None:
        fields, version, w = await self._xattr_target(inode)
        if not fields:
            raise _fail(errno.ENOTSUP, "xattr %s on a directory: not supported", name)
        changes = xattrs.changed(fields, name, value)
        if w is not None:
            _check_changes(changes)
            w.changes.update(changes)
        else:
            assert version is not None
            await _run(self.store.update, version.id, **changes)
        self.inodes.invalidate(inode)


def _check_changes(changes: dict[str, Any]) -> None:
    """Validate xattr changes kept for a later commit, so a bad value fails now (EINVAL/E2BIG)."""
    if "description" in changes:
        check_description(changes["description"])
    if "tags" in changes:
        check_tags(changes["tags"])
    if "metadata" in changes:
        check_metadata(changes["metadata"])


def parse_safe(path: str) -> VersionsPath | None:
    """`versions_view.parse` that treats an impossible `.versions` path as a (missing) virtual one."""
    try:
        return parse(path)
    except ValueError:
        return VersionsPath(dir=path)
