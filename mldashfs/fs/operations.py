"""The pyfuse3 `Operations` of mldashfs: each handler resolves the inode, calls the Store, translates.

Blocking work (Store calls, disk reads/writes, hashing at commit) runs in worker threads
(`trio.to_thread`), so a big write never stalls `ls`; only a small file's commit runs on the loop,
when the Store can make it without waiting (`nowait`). Errors cross the FUSE boundary in one place,
`boundary.fuse_errors`. The inode and handle tables are only changed by synchronous code between awaits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import pyfuse3
import trio

from ..buffers import aligned
from ..errors import NotFound, StoreError, WouldBlock
from ..paths import split
from ..records import Dir, Stat, Version
from ..staging import Staged
from ..store import Store
from . import attributes, xattrs
from .boundary import decode_name, encode_name, fail, fuse_errors, log, run_blocking
from .dir_times import DirTimes
from .directories import DirHandle
from .handles import HandleTable, ReadHandle, WriteHandle
from .inodes import InodeTable
from .page_cache import CacheMode, PageCache
from .passthrough import Backings
from .tree import Tree
from .versions_view import child, parse_lenient

R = TypeVar("R")

#: Writes up to this size (every FUSE write: max_write is 1 MiB) go straight to the staged file from
#: the trio loop: a pwrite into the page cache costs less than a thread hop (measured: 1 GiB in 2.1 s
#: inline against 3.2 s through threads), and the SHA-256 runs on the staged file's own thread.
INLINE_WRITE = 1024 * 1024
#: How long an open waits for the release of a writer that was already closed (see _settle_closed_writers).
CLOSE_GRACE = 0.1


class Operations(pyfuse3.Operations):
    """POSIX calls on the mount -> Store calls; `root` is the store path shown at the mount root;
    `passthrough` lets the kernel read blobs itself where it can (see `passthrough.py`)."""

    supports_dot_lookup = True
    enable_writeback_cache = False

    def __init__(self, store: Store, root: str = "", passthrough: bool = True) -> None:
        super().__init__()
        self.store = store
        self.tree = Tree(store)
        self.uid, self.gid = os.getuid(), os.getgid()
        self.inodes = InodeTable(root, attr_ttl=attributes.TIMEOUT)
        self.dir_times = DirTimes()
        self.files = HandleTable()
        self.dirs: dict[int, DirHandle] = {}
        self.cache = PageCache()
        self.backings = Backings(passthrough)
        self._dir_numbers = iter(range(1, 1 << 62))
        self._reply = aligned(1 << 20)  # cached reads land here; pyfuse3 replies before the loop reads again
        self.initialized = trio.Event()  # set once the kernel's INIT is answered (see daemon.raise_readahead)
        self.background: trio.Nursery | None = None  # runs work no request waits for (set by daemon._serve)

    def init(self) -> None:
        self.initialized.set()

    # -- resolving -------------------------------------------------------------------------

    def _path(self, ino: int) -> str:
        path = self.inodes.path(ino)
        if path is None:
            log.info("inode %d has no path (unlinked or moved on): ENOENT", ino)
            raise pyfuse3.FUSEError(errno.ENOENT)
        return path

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
            a = attributes.of(ino, obj, self.uid, self.gid, read_only=parse_lenient(path) is not None)
        if stat.S_ISDIR(a.st_mode):
            self.dir_times.apply(ino, a)
        else:
            a.st_nlink = self.inodes.links(ino)
        self.inodes.remember(ino, a)
        return a

    def _entries_changed(self, *dirs: int) -> None:
        """Entries of folders `dirs` were created, removed or renamed through the mount: their mtime
        and ctime are now (the kernel drops its own copy of their attributes after such a call)."""
        now = time.time_ns()
        for ino in dirs:
            self.dir_times.entries_changed(ino, now)
            self.inodes.invalidate(ino)

    def _unlinked_attrs(self, ino: int) -> pyfuse3.EntryAttributes:
        """Attributes of an inode whose path is gone while handles keep it open (fstat after unlink):
        its open writer's, else those last sent, else those of the version a handle holds."""
        if self.files.uncommitted_writer(ino) is None:
            cached = self.inodes.cached(ino)  # a detached inode's are kept however old
            if cached is not None:
                return cached
        for h in self.files.handles.values():
            if h.ino == ino:
                return self._attrs(ino, h.version if isinstance(h, ReadHandle) else h.base, "")
        log.info("getattr of inode %d: no path, no kept attributes, no open handle: ENOENT", ino)
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def _meta(self, fn: Callable[..., R], *args: Any) -> R:
        """Call `fn` (a catalog read) on the loop when the catalog answers in microseconds (local
        SQLite: no checkpoint, so no other handler runs in between), else in a worker thread (a
        remote catalog may wait on the network, and the mount must stay responsive meanwhile)."""
        if self.store.remote:
            return await run_blocking(fn, *args)
        return fn(*args)

    async def _current(self, ino: int | None, path: str) -> Version | Dir | None:
        """What `path` (inode `ino`, if it has one) is now: the store's answer, or None while a writer
        of `ino` holds bytes not committed yet; NotFound if neither. A remote store answers in a
        thread, where a writer's first commit may land after the store said "no such file" and before
        the writer is looked at: then the store is asked again (the file never ceased to exist)."""
        writing = ino is not None and self.files.uncommitted_writer(ino) is not None
        try:
            return await self._meta(self.tree.resolve, path)
        except NotFound:
            if ino is not None and self.files.uncommitted_writer(ino) is not None:
                return None
            if not writing:
                raise
        return await self._meta(self.tree.resolve, path)

    async def _entry(self, path: str) -> pyfuse3.EntryAttributes:
        """Look `path` up (store or an open writer) and count one kernel reference to it."""
        ino = self.inodes.inodes.get(path)
        obj = await self._current(ino, path)
        if ino is not None and self._outdated(ino, obj):
            self._retire(ino, path)
        elif ino is not None and self._type_changed(ino, obj):
            self.inodes.detach(path)
        ino = self.inodes.ino(path)
        a = self._attrs(ino, obj, path)
        self.inodes.looked_up(ino)
        return a

    # -- lookup and attributes -------------------------------------------------------------

    @fuse_errors
    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        parent = self._path(parent_inode)
        if name == b".":
            return await self._entry(parent)
        if name == b"..":
            return await self._entry(split(parent)[0] if parent_inode != pyfuse3.ROOT_INODE else parent)
        return await self._entry(child(parent, decode_name(name)))

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, n in inode_list:
            self.inodes.forget(ino, n)
            if self.inodes.path(ino) is None and ino not in self.files.writers:
                self.cache.forget(ino)
            if ino not in self.inodes.paths:
                self.dir_times.forget(ino)

    @fuse_errors
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if self.files.uncommitted_writer(inode) is None:
            cached = self.inodes.cached(inode)
            if cached is not None:
                return cached
        path = self.inodes.path(inode)
        if path is None:
            return self._unlinked_attrs(inode)
        try:
            obj = await self._current(inode, path)
        except NotFound:
            obj = None
        if self._outdated(inode, obj):
            return self._retire(inode, path)
        if self._type_changed(inode, obj):
            self.inodes.detach(path)  # `inode` keeps its attributes until the kernel looks the path up again
            kept = self.inodes.cached(inode)
            if kept is not None:
                return kept
        return self._attrs(inode, obj, path)

    def _kernel_size_may_differ(self, ino: int, version: Version) -> bool:
        """Whether the kernel may hold another size for `ino` than `version`'s. Sizes sent by lookup
        and getattr are known. A size sent only by readdir is that of the newest version when the
        listing was read, which the kernel trusts for `TIMEOUT`: the listed version is `version`
        unless the path's newest changed within `VISIBILITY_DELAY` (twice that), by a commit or by
        the deletion of a newer version (one indexed catalog read, only for listed-only inodes)."""
        sent = self.inodes.sent_size(ino)
        if sent is not None:
            return sent != version.size
        since = time.time() - attributes.VISIBILITY_DELAY
        if version.created_at > since:
            return True
        # Asking a remote catalog would wait on the network here, where the open must reply without
        # an await: assume the size may differ (the kernel then asks for the attributes once more).
        return self.store.remote or self.store.deleted_since(version.path, since)

    def _forget_kernel_attrs(self, ino: int) -> None:
        """Make the kernel ask for `ino`'s attributes before it next trusts them (only once mounted:
        the operation tests call the handlers without a kernel)."""
        if self.initialized.is_set():
            with contextlib.suppress(OSError):  # ENOENT: the kernel holds no such inode
                pyfuse3.invalidate_inode(ino, attr_only=True)

    def _outdated(self, ino: int, obj: Version | Dir | None) -> bool:
        """Whether `ino` has page-cache readers of another version than `obj`, the path's newest."""
        cached = self.cache.cached_version(ino)
        return cached is not None and (not isinstance(obj, Version) or obj.id != cached.id)

    def _type_changed(self, ino: int, obj: Version | Dir | None) -> bool:
        """Whether `obj`, what `ino`'s path is now, has another file type (file, link, directory) than
        the kernel holds for `ino`: a kernel inode never changes type (it calls one that does bad:
        EIO), so the path then gets a new inode, as after an rm and a create by another process."""
        sent = self.inodes.sent_type(ino)
        return sent is not None and obj is not None and sent != attributes.file_type(obj)

    def _retire(self, ino: int, path: str, for_writer: bool = False) -> pyfuse3.EntryAttributes:
        """Leave `ino` to its page-cache readers, with the size of their version, and give `path` a
        new inode at its next lookup: the kernel cuts such readers at the inode's size, so a writer's
        O_TRUNC, a truncate or a newer version must never reach `ino`. Returns the attributes it keeps."""
        kept = self._attrs(ino, self.cache.cached_version(ino), path)
        self.inodes.detach(path, unlinked=False)
        if for_writer:
            self.cache.moved(path)
        log.debug("%s leaves inode %d to its page-cache readers", path, ino)
        return kept

    def _refuse_if_cached(self, ino: int, path: str) -> None:
        """Before a writer's open or a truncate changes `ino`'s size: if page-cache readers hold it,
        move `path` to a new inode and answer ESTALE, which the kernel retries there by itself."""
        if self.cache.cached_version(ino) is not None:
            self._retire(ino, path, for_writer=True)
            raise pyfuse3.FUSEError(errno.ESTALE)

    @fuse_errors
    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields,
                      fh: int | None, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        path = self.inodes.path(inode)  # None: unlinked while open (ftruncate, fchmod of the descriptor)
        if path is not None and parse_lenient(path) is not None:
            raise fail(errno.EROFS, "setattr %s: the .versions view is read-only", path)
        if (fields.update_uid and attr.st_uid != self.uid) or (fields.update_gid and attr.st_gid != self.gid):
            raise fail(errno.EPERM, "setattr %s: changing the owner is not supported", path)
        handle = self.files.handles.get(fh) if fh is not None else None
        writer = handle if isinstance(handle, WriteHandle) else self.files.writer(inode)
        if fields.update_size:
            if writer is not None:
                await self._truncate(writer, attr.st_size)
            elif path is None:
                raise pyfuse3.FUSEError(errno.ENOENT)
            else:
                self._refuse_if_cached(inode, path)  # truncate(2) looks the path up again on ESTALE
                await run_blocking(self.tree.truncate, path, attr.st_size)
                self.inodes.invalidate(inode)
        changes: dict[str, Any] = {}
        if fields.update_mode:
            changes["mode"] = attr.st_mode & 0o7777
        if fields.update_mtime:
            changes["mtime"] = attr.st_mtime_ns / 1e9
        if changes:
            await self._set_attrs(inode, path, changes)
            self.dir_times.attrs_changed(inode, time.time_ns(), mtime_set=fields.update_mtime)
        return await self.getattr(inode, ctx)

    async def _set_attrs(self, inode: int, path: str | None, changes: dict[str, Any]) -> None:
        """mtime/mode: on the newest version, and kept for an open writer's commit (under its lock);
        for a file unlinked while open (`path` None), only in the attributes its handles see."""
        pending = self.files.uncommitted_writer(inode)
        only_pending = False
        if pending is not None:
            async with pending.lock:
                if pending.uncommitted:
                    pending.attrs.update(changes)
                    only_pending = pending.created
        if path is None:
            kept = self.inodes.cached(inode)
            if kept is not None:
                attributes.change(kept, **changes)
        elif not only_pending:
            await run_blocking(self.store.set_attrs, path, **changes)
        self.inodes.invalidate(inode)

    # -- directories -----------------------------------------------------------------------

    @fuse_errors
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        path = self._path(inode)
        obj = await self._meta(self.tree.resolve, path)
        if not isinstance(obj, Dir):
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        extra = [self.inodes.path(i) for i, ws in self.files.writers.items() if any(w.created for w in ws)]
        handle = await run_blocking(DirHandle.open, self.store, path, [p for p in extra if p and split(p)[0] == path],
                                    (self.uid, self.gid))
        fh = next(self._dir_numbers)
        self.dirs[fh] = handle
        return fh

    @fuse_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        handle = self.dirs[fh]
        index = start_id
        async with handle.lock:  # a read-ahead of this handle lands first
            handle.requests += 1
            while True:
                rows = handle.cached_rows(index)
                if rows is None:  # one page at first, then as many rows again as this reply took
                    rows = await run_blocking(handle.fetch, self.store, index, 2 * index - start_id)
                if not rows:
                    return
                parent = handle.path
                prefix = child(parent, "")
                for name, obj, a in rows:
                    path = prefix + name
                    ino = self.inodes.ino(path, parent)
                    if a is not None and ino not in self.files.writers:
                        # a stored row: attributes made with the fetch; the daemon caches none (the
                        # kernel does, and a later getattr asks the Store)
                        a.st_ino = ino
                        self.dir_times.apply(ino, a)
                    else:
                        try:
                            a = await self._listed_attrs(ino, obj, path)
                        except (pyfuse3.FUSEError, StoreError):
                            index += 1
                            continue
                    if not pyfuse3.readdir_reply(token, encode_name(name), a, index + 1):
                        self._read_ahead(handle, start_id, 2 * index - start_id)
                        return
                    self.inodes.looked_up(ino)
                    index += 1

    async def _listed_attrs(self, ino: int, obj: Stat | Version | Dir | None, path: str) -> pyfuse3.EntryAttributes:
        """Attributes of a readdir row that came without them: a `.versions` entry, a file with an
        open writer (the listing shows the writer's size), or a file created through the mount."""
        if isinstance(obj, Stat) or (obj is None and self.files.uncommitted_writer(ino) is None):
            obj = await self._current(ino, path)  # None: created through the mount, committed since opendir
        return self._attrs(ino, obj, path)

    def _read_ahead(self, handle: DirHandle, index: int, until: int) -> None:
        """While the kernel takes in a full reply (of the rows from `index` on), fetch the rows of its
        next readdir, up to `until`: the catalog reads then overlap the kernel's work instead of
        following it. Only while serving (`background`): the operation tests call handlers without one."""
        if self.background is not None:
            self.background.start_soon(self._fetch_ahead, handle, index, until, handle.requests)

    async def _fetch_ahead(self, handle: DirHandle, index: int, until: int, requests: int) -> None:
        async with handle.lock:
            if handle.requests != requests:  # the kernel asked again first (a seekdir, say)
                return
            try:
                await run_blocking(handle.read_ahead, self.store, index, until)
            except StoreError as e:  # the readdir that wants these rows fetches them again and fails
                log.debug("read-ahead of %s: %s", handle.path, e)
            except Exception:  # never the daemon's end: that readdir fails alone, with EIO
                log.exception("read-ahead of %s failed unexpectedly", handle.path)

    async def releasedir(self, fh: int) -> None:
        self.dirs.pop(fh, None)

    @fuse_errors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        path = child(self._path(parent_inode), decode_name(name))
        if parse_lenient(path) is not None:
            raise fail(errno.EROFS, "mkdir %s: the .versions view is read-only", path)
        await run_blocking(self.store.mkdir, path, mode=mode & ~ctx.umask)
        self._entries_changed(parent_inode)
        return await self._entry(path)

    @fuse_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        path = child(self._path(parent_inode), decode_name(name))
        if parse_lenient(path) is not None:
            raise fail(errno.EROFS, "rmdir %s: the .versions view is read-only", path)
        await run_blocking(self.store.rmdir, path)
        self.inodes.detach(path)
        self._entries_changed(parent_inode)

    # -- names -----------------------------------------------------------------------------

    @fuse_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        path = child(self._path(parent_inode), decode_name(name))
        vp = parse_lenient(path)
        if vp is not None:
            await run_blocking(self.tree.delete_version, vp)
            self.inodes.detach(path)
            self._entries_changed(parent_inode)
            return
        ino = self.inodes.inodes.get(path)
        async with self._writers_settled(ino):
            try:
                await run_blocking(self.store.delete, path)
            except NotFound:
                if ino is None or not any(w.created for w in self.files.writers.get(ino, [])):
                    raise
            self.inodes.detach(path)
            self._entries_changed(parent_inode)

    @contextlib.asynccontextmanager
    async def _writers_settled(self, ino: int | None) -> AsyncIterator[None]:
        """Hold the locks of `ino`'s writers: no commit of that inode runs (or starts) meanwhile.

        A commit reads the inode's path and then takes a while in a thread; an unlink or rename
        of that path in between would otherwise land before the version it should have moved.
        """
        async with contextlib.AsyncExitStack() as stack:
            for w in list(self.files.writers.get(ino, [])) if ino is not None else []:
                await stack.enter_async_context(w.lock)
            yield

    @fuse_errors
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: pyfuse3.RequestContext) -> None:
        src = child(self._path(parent_inode_old), decode_name(name_old))
        dst = child(self._path(parent_inode_new), decode_name(name_new))
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise fail(errno.EINVAL, "rename %s <-> %s: RENAME_EXCHANGE is not supported", src, dst)
        if parse_lenient(src) is not None or parse_lenient(dst) is not None:
            raise fail(errno.EROFS, "rename %s -> %s: the .versions view is read-only", src, dst)
        replace = not flags & pyfuse3.RENAME_NOREPLACE
        ino = self.inodes.inodes.get(src)
        async with self._writers_settled(ino):
            try:
                await run_blocking(self.store.rename, src, dst, replace=replace)
            except NotFound:
                # A file created through the mount and still open has no version yet: move its inode only.
                if ino is None or not any(w.created for w in self.files.writers.get(ino, [])):
                    raise
                self.store.check_new_path(dst, is_file=True)  # refused now, not at its commit
                if not replace and await self._meta(self.tree.exists, dst):
                    raise pyfuse3.FUSEError(errno.EEXIST) from None
            self.inodes.move(src, dst)
            self._entries_changed(parent_inode_old, parent_inode_new)

    @fuse_errors
    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        path = child(self._path(parent_inode), decode_name(name))
        if parse_lenient(path) is not None:
            raise fail(errno.EROFS, "symlink %s: the .versions view is read-only", path)
        # The kernel holds the parent directory's lock across symlink, so only another process (the SDK)
        # can come between this check and the commit; its file then keeps its history under the link.
        if await self._meta(self.tree.exists, path):
            raise pyfuse3.FUSEError(errno.EEXIST)
        await run_blocking(self.store.symlink, path, target)
        return await self._entry(path)

    @fuse_errors
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        path = self._path(inode)
        obj = await self._meta(self.tree.resolve, path)
        if not isinstance(obj, Version) or not obj.is_link:
            raise fail(errno.EINVAL, "readlink %s: not a symbolic link", path)
        return await run_blocking(self.store.read_bytes, obj)

    @fuse_errors
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes,
                   ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        raise fail(errno.EPERM, "link %r: hard links are not supported", new_name)

    @fuse_errors
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        raise fail(errno.EPERM, "mknod %r: device nodes and fifos are not supported", name)

    @fuse_errors
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        st = await run_blocking(self.store.statvfs)
        s = pyfuse3.StatvfsData()
        s.f_bsize, s.f_frsize = st.f_bsize, st.f_frsize
        s.f_blocks, s.f_bfree, s.f_bavail = st.f_blocks, st.f_bfree, st.f_bavail
        s.f_files, s.f_ffree, s.f_favail = st.f_files, st.f_ffree, st.f_favail
        s.f_namemax = 255
        return s

    # -- files -----------------------------------------------------------------------------

    @fuse_errors
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: pyfuse3.RequestContext) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        path = child(self._path(parent_inode), decode_name(name))
        if parse_lenient(path) is not None:
            raise fail(errno.EROFS, "create %s: the .versions view is read-only", path)
        base = await self._meta(self.store.latest_or_none, path)
        if base is None:
            self.store.check_new_path(path, is_file=True)
        ino = self.inodes.ino(path)
        if self.cache.cached_version(ino) is not None:
            self._retire(ino, path)
            ino = self.inodes.ino(path)
        w = WriteHandle(ino, None, self.cache.open_writer(ino, path), created=base is None, pending=True,
                        mtime=time.time())
        if base is None:
            w.attrs["mode"] = mode & 0o7777 & ~ctx.umask
        fh = self.files.add(w)
        a = self._attrs(ino, base, path)
        self.inodes.looked_up(ino)
        if base is None:
            self._entries_changed(parent_inode)
        return self._info(fh, w.cache), a

    @staticmethod
    def _info(fh: int, cache: CacheMode) -> pyfuse3.FileInfo:
        return pyfuse3.FileInfo(fh=fh, keep_cache=cache.keep_cache, direct_io=cache.direct_io)

    @fuse_errors
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        path = self.inodes.path(inode)
        if path is None:
            raise pyfuse3.FUSEError(errno.ESTALE)  # unlinked or moved on: the kernel looks the path up again
        writing = flags & os.O_ACCMODE != os.O_RDONLY or bool(flags & os.O_TRUNC)
        vp = parse_lenient(path)
        if vp is not None:
            if writing:
                raise fail(errno.EROFS, "open %s for writing: versions are read-only", path)
            obj = await self._meta(self.tree.resolve, path)
            if not isinstance(obj, Version):
                raise pyfuse3.FUSEError(errno.EISDIR)
            return await self._open_reader(inode, path, obj)
        await self._settle_closed_writers(inode)
        if self.inodes.path(inode) is None:  # moved on while this open waited
            raise pyfuse3.FUSEError(errno.ESTALE)
        pending = self.files.uncommitted_writer(inode)
        if pending is not None and pending.created:
            version = None
        else:
            version = await self._meta(self.store.latest, path)
        if not writing:
            return await self._open_reader(inode, path, version)
        self._refuse_if_cached(inode, path)  # open(2) looks the path up again on ESTALE
        truncate = bool(flags & os.O_TRUNC)
        # Registered before any await, so a reader opening meanwhile sees the writer (direct I/O).
        w = WriteHandle(inode, None if truncate else version, self.cache.open_writer(inode, path),
                        pending=truncate, mtime=time.time())
        fh = self.files.add(w)
        if truncate and version is not None:
            # Overwritten in place, as by torch.save: the superseded version's pages go back to the
            # kernel for the new bytes, as a plain filesystem's overwrite frees them (see README).
            try:
                await run_blocking(self.store.drop_cache, version)
            except BaseException:
                self.files.pop(fh)
                self._close_cache(inode, w.cache, writer=True)
                raise
        return self._info(fh, w.cache)

    async def _settle_closed_writers(self, inode: int) -> None:
        """Give writers of `inode` that were closed (flushed, nothing left to write) a moment to be
        released: the kernel sends release after close() returns, and a create or O_TRUNC that wrote
        nothing commits there, so `: > f; cat f` must not read the old bytes."""
        for w in list(self.files.writers.get(inode, [])):
            if w.closed:
                with trio.move_on_after(CLOSE_GRACE):
                    await w.released.wait()

    async def _open_reader(self, inode: int, path: str, version: Version | None) -> pyfuse3.FileInfo:
        handle = await run_blocking(ReadHandle, inode, self.store, version)
        # From here to the reply nothing awaits, so the kernel gets the opens of an inode in the
        # order the page-cache table records them: it refuses any open but passthrough (with the
        # same blob) while passthrough files are open.
        cache: CacheMode | None
        if version is None:
            cache = self.cache.open_direct(inode)
        else:
            cache = self.cache.open_reader(inode, path, version)
        if cache is None:
            # Another version's readers hold the inode: the path moves to a new inode, which
            # open(2) looks up and opens by itself on ESTALE.
            handle.close()
            if self.inodes.path(inode) == path:
                self._retire(inode, path)
            raise pyfuse3.FUSEError(errno.ESTALE)
        handle.cache = cache
        fh = self.files.add(handle)
        try:
            return self._reader_info(fh, handle)
        except BaseException:
            self.files.pop(fh)
            handle.close()
            self._close_cache(inode, handle.cache, writer=False)
            raise

    def _reader_info(self, fh: int, handle: ReadHandle) -> pyfuse3.FileInfo:
        """The open reply for reader `fh`: passthrough to its blob if its owner's readers use it."""
        cache, version = handle.cache, handle.version
        if cache.direct_io or version is None:
            return self._info(fh, cache)
        if self._kernel_size_may_differ(handle.ino, version):
            # The kernel cuts page-cache reads at the size it holds, which may be another version's
            # (one the SDK saved or deleted within the attribute timeout, or a writer's direct writes).
            self.inodes.invalidate(handle.ino)
            self._forget_kernel_attrs(handle.ino)
        if handle.blob_fd >= 0:
            backing = self.cache.backing(handle.ino, lambda: self.backings.open(handle.blob_fd))
            if backing is not None:
                return pyfuse3.FileInfo(fh=self.backings.handle(fh, backing))
        return self._info(fh, cache)

    def _close_cache(self, ino: int, cache: CacheMode, writer: bool) -> None:
        """A handle of `ino` opened with `cache` is gone: drop a backing id nobody reads any more."""
        backing = self.cache.close(ino, cache, writer)
        if backing is not None:
            self.backings.close(backing)

    @fuse_errors
    async def read(self, fh: int, off: int, size: int) -> bytes | memoryview:  # type: ignore[override]  # pyfuse3 sends any buffer
        handle = self.files.handles[fh]
        if isinstance(handle, ReadHandle):
            if len(self._reply) < size:
                self._reply = aligned(size)  # a new one: views of the old one may still be alive
            cached = handle.read_cached(off, size, self._reply)
            return cached if cached is not None else await run_blocking(handle.read, off, size)
        async with handle.lock:
            data = await run_blocking(self._stage(handle).read, off, size)
            handle.copied = True
            return data

    def _stage(self, w: WriteHandle) -> Staged:
        """`w`'s staged file, made on first use (cheap: the copy of its base is made lazily)."""
        if w.staged is None:
            path = self.inodes.path(w.ino)
            w.staged = self.store.stage(w.base, split(path)[1] if path is not None else None)
            w.copied = w.base is None
        return w.staged

    @fuse_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        w = self.files.handles[fh]
        if not isinstance(w, WriteHandle):
            raise pyfuse3.FUSEError(errno.EBADF)
        async with w.lock:
            if w.failed:
                raise pyfuse3.FUSEError(w.failed)
            staged = self._stage(w)
            try:
                if w.copied and len(buf) <= INLINE_WRITE:
                    n = staged.write(off, buf)  # a small pwrite into the page cache; hashing is on its own thread
                else:
                    n = await run_blocking(staged.write, off, buf)
                    w.copied = True
            except BaseException as e:
                await self._fail(w, e)
                raise
        w.mtime = time.time()
        w.closed = False
        w.attrs.pop("mtime", None)
        return n

    async def _truncate(self, w: WriteHandle, size: int) -> None:
        async with w.lock:
            await run_blocking(self._stage(w).truncate, size)
            w.copied = True
        w.mtime = time.time()

    async def _commit(self, w: WriteHandle) -> None:
        """Make `w`'s bytes the newest version of its path (caller holds `w.lock`)."""
        path = self.inodes.path(w.ino)
        if path is None:  # unlinked or replaced while open: nothing is stored; the bytes stay readable
            return  # through the handle until its release discards them
        staged = self._stage(w)
        w.staged = None
        w.committing = staged.size
        try:  # a small file commits here on the loop: a thread hop costs as much as the commit itself
            try:
                v = self.store.commit(path, staged, **w.changes, **w.attrs, nowait=True)
            except WouldBlock:
                v = await run_blocking(self.store.commit, path, staged, **w.changes, **w.attrs)
        except BaseException as e:  # the store discarded the staged bytes and stored nothing
            await self._fail(w, e)
            raise
        finally:
            w.committing = None
        w.base, w.pending, w.created = v, False, False
        w.changes.clear()
        w.attrs.clear()
        self.inodes.invalidate(w.ino)
        log.debug("committed %s version %s (%d bytes)", path, v.id, v.size)

    async def _fail(self, w: WriteHandle, e: BaseException) -> None:
        """A write or commit of `w` failed with `e` (a full disk, say): drop its bytes, so that no
        later close or release stores part of them; its later writes and closes get the same errno.
        A file it created and that has no version leaves the tree (as if never created)."""
        w.failed = e.errno if isinstance(e, StoreError | OSError) and e.errno else errno.EIO
        w.pending = False
        w.changes.clear()
        w.attrs.clear()
        staged, w.staged = w.staged, None
        if staged is not None:
            await run_blocking(staged.discard)
        path = self.inodes.path(w.ino)
        if w.created and path is not None and self.files.uncommitted_writer(w.ino) is None:
            self.inodes.detach(path)
            self._forget_kernel_entry(path)

    def _forget_kernel_entry(self, path: str) -> None:
        """Make the kernel drop its cached name `path` (only once mounted, as `_forget_kernel_attrs`)."""
        parent, name = split(path)
        parent_ino = self.inodes.inodes.get(parent)
        if self.initialized.is_set() and parent_ino is not None:
            pyfuse3.invalidate_entry_async(parent_ino, encode_name(name), ignore_enoent=True)

    @fuse_errors
    async def flush(self, fh: int) -> None:
        w = self.files.handles.get(fh)
        if isinstance(w, WriteHandle):
            async with w.lock:
                if w.failed:
                    raise pyfuse3.FUSEError(w.failed)
                if w.staged is not None and w.staged.dirty:
                    await self._commit(w)
                w.closed = True

    @fuse_errors
    async def release(self, fh: int) -> None:
        handle = self.files.handles[fh]
        try:
            if isinstance(handle, ReadHandle):
                handle.close()
                return
            async with handle.lock:
                if handle.uncommitted and self.inodes.path(handle.ino) is not None:
                    await self._commit(handle)
                elif handle.staged is not None:
                    staged, handle.staged = handle.staged, None
                    await run_blocking(staged.discard)
        finally:
            self.files.pop(fh)
            self._close_cache(handle.ino, handle.cache, isinstance(handle, WriteHandle))
            if isinstance(handle, WriteHandle):
                handle.released.set()

    @fuse_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        w = self.files.handles.get(fh)
        if self.store.remote and w is not None:
            await self._fsync_remote(w)
            return
        if isinstance(w, WriteHandle) and w.staged is not None:
            async with w.lock:
                if w.staged is not None:
                    await run_blocking(w.staged.fsync)

    async def _fsync_remote(self, handle: ReadHandle | WriteHandle) -> None:
        """On a remote store durable means uploaded: commit what the handle wrote (as a close would),
        then wait until every version of its path is in S3 and MongoDB."""
        if isinstance(handle, WriteHandle):
            async with handle.lock:
                if handle.staged is not None and handle.staged.dirty:
                    await self._commit(handle)
        path = self.inodes.path(handle.ino)
        if path is not None:
            await run_blocking(self.store.wait_uploaded, path)

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
            obj = await self._meta(self.tree.resolve, path)
        if isinstance(obj, Dir):
            return {}, None, None
        fields = xattrs.fields_of(obj)
        if w is not None:
            fields.update(w.changes)
        return fields, obj, w

    @fuse_errors
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        if not name.startswith(b"user."):
            # security.selinux and system.posix_acl_*: `ls -l` asks for them for every file, but an
            # ENOTSUP makes it remember the whole mount has none (coreutils caches it per device).
            raise pyfuse3.FUSEError(errno.ENOTSUP)
        fields, version, w = await self._xattr_target(inode)
        if not fields:
            raise pyfuse3.FUSEError(errno.ENODATA)
        return xattrs.get(fields, version if w is None else None, xattrs.decode_name(name))

    @fuse_errors
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        fields, version, w = await self._xattr_target(inode)
        if version is not None and version.is_link:
            # Linux lets user.* xattrs live only on files and directories: the kernel answers a link's
            # get (ENODATA) and set (EPERM) itself, so listing names nobody can read would only mislead.
            return []
        return xattrs.names(fields, version if w is None else None) if fields else []

    @fuse_errors
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self._change_xattr(inode, xattrs.decode_name(name), value)

    @fuse_errors
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self._change_xattr(inode, xattrs.decode_name(name), None)

    async def _change_xattr(self, inode: int, name: str, value: bytes | None) -> None:
        """Set or remove one xattr: on the newest version in place, or kept for an open writer's commit.

        Under the writer's lock, so a change never slips in while that writer's commit is running.
        """
        pending = self.files.uncommitted_writer(inode)
        if pending is not None:
            async with pending.lock:
                if pending.uncommitted:
                    fields, _, _ = await self._xattr_target(inode)
                    changes = xattrs.changed(fields, name, value)
                    xattrs.check(changes)
                    pending.changes.update(changes)
                    return
        fields, version, _ = await self._xattr_target(inode)
        if version is None:
            raise fail(errno.ENOTSUP, "xattr %s on a directory: not supported", name)
        changes = xattrs.changed(fields, name, value)
        if changes:
            await run_blocking(self.store.update, version.id, **changes)
            self.inodes.invalidate(inode)
