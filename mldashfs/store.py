"""The Store: the one API the SDK, the CLI and the FUSE daemon use (see docs/store-api.md).

Invariant: a version is visible only after its bytes are complete at their blob key and its
catalog row is committed. Commit order and what a crash at each point leaves behind:
1. bytes written and hashed in staging      -> crash: an orphan staging file, removed at next open;
2. staging file renamed to its blob key     -> crash: an unreferenced blob (no row names it), removed by fsck --repair;
3. catalog row inserted (one transaction)   -> the version exists.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import hashlib
import json
import mimetypes
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from . import globs, paths
from .blobs import Blobs, LocalCopies, blob_key
from .catalog import Catalog, NewerExists, Usage
from .errors import (
    InvalidPath,
    InvalidValue,
    IsADirectory,
    NotADirectory,
    NotFound,
    NotPermitted,
    StoreError,
    TooLarge,
    Unavailable,
    WouldBlock,
    os_failure,
)
from .hashing import CHUNK, copy_file_hashing, copy_hashing, write_all
from .ids import Snowflake, parse_id
from .records import DIR_MODE, FILE_MODE, LINK_MODE, LINK_TYPE, Dir, Entry, Stat, Version
from .staging import Staged, Staging, Writer

if TYPE_CHECKING:
    from .writeback import WriteBack

#: The store's own folder inside its root; a namespace may not take this name.
INTERNAL = ".mldashfs"
#: Largest description or metadata (as JSON) a version may carry, like an xattr value.
MAX_META_BYTES = 64 * 1024
#: Longest link target in bytes (Linux's PATH_MAX less the terminating NUL, as symlink(2) takes).
MAX_LINK_BYTES = 4095
#: A `nowait` commit takes bytes held in memory up to this size: writing them costs about what the
#: catalog row does (the mount commits small files on its event loop this way).
NOWAIT_BYTES = 64 * 1024
_UNSET: Any = object()


#: ML file types that system MIME tables miss or get wrong (.pt is not a "page table" here).
ML_TYPES = {
    ".pt": "application/octet-stream", ".pth": "application/octet-stream", ".ckpt": "application/octet-stream",
    ".bin": "application/octet-stream", ".safetensors": "application/octet-stream",
    ".pkl": "application/octet-stream", ".npy": "application/octet-stream", ".npz": "application/zip",
    ".onnx": "application/octet-stream", ".h5": "application/x-hdf5", ".parquet": "application/vnd.apache.parquet",
    ".yaml": "application/yaml", ".yml": "application/yaml", ".jsonl": "application/jsonl",
    ".md": "text/markdown",
}


def content_type_of(name: str) -> str:
    """MIME type from the file name, `application/octet-stream` when unknown."""
    ext = os.path.splitext(name)[1].lower()
    return ML_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def check_tags(tags: Iterable[str] | None) -> tuple[str, ...]:
    """Tags as a tuple of distinct non-empty strings without ',' (the xattr separator); a single
    string is one tag (`tags="best"`), as users mean it, never one tag per character."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        tags = [tags]
    if isinstance(tags, bytes):
        raise InvalidValue(f"tags must be strings, not bytes ({tags!r})")
    out: list[str] = []
    for t in tags:
        if not isinstance(t, str) or not t.strip() or "," in t or "\x00" in t:
            raise InvalidValue(f"bad tag {t!r}: tags are non-empty strings without ',' or NUL")
        t = t.strip()
        if t not in out:
            out.append(t)
    return tuple(out)


def check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """A JSON-serialisable dict with string keys, at most 64 KiB as JSON."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidValue(f"metadata must be a dict, not {type(metadata).__name__}")
    try:
        text = json.dumps(metadata, allow_nan=False)
    except ValueError as e:  # NaN and infinities: not JSON, so `--json` output and xattrs would not parse
        raise InvalidValue(f"metadata holds NaN or an infinity, which JSON cannot carry: {e}") from e
    except TypeError as e:
        raise InvalidValue(f"metadata is not JSON-serialisable: {e}") from e
    if len(text.encode()) > MAX_META_BYTES:
        raise TooLarge(f"metadata is {len(text)} bytes as JSON; the limit is {MAX_META_BYTES}")
    return json.loads(text)


def check_description(description: str | None) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidValue(f"description must be a string, not {type(description).__name__}")
    if len(description.encode("utf-8", "surrogateescape")) > MAX_META_BYTES:
        raise TooLarge(f"description is over {MAX_META_BYTES} bytes")
    return description


def check_link_target(target: str | bytes) -> bytes:
    """A link target as the bytes stored: not empty, no NUL, at most MAX_LINK_BYTES (what symlink(2)
    accepts); a str is encoded as os.fsencode would on a UTF-8 system."""
    data = target.encode("utf-8", "surrogateescape") if isinstance(target, str) else target
    if not isinstance(data, bytes):
        raise InvalidValue(f"a link target is a string, not {type(target).__name__}")
    if not data or b"\x00" in data:
        raise InvalidValue(f"bad link target {target!r}: it must be non-empty and hold no NUL")
    if len(data) > MAX_LINK_BYTES:
        raise InvalidPath(f"link target of {len(data)} bytes: the limit is {MAX_LINK_BYTES}", errno.ENAMETOOLONG)
    return data


class Store:
    """Versioned files of experiments over a Catalog (metadata) and Blobs (bytes). Thread-safe."""

    def __init__(self, root: str, catalog: Catalog, blobs: Blobs, copies: LocalCopies, staging: Staging,
                 state: str = "local", location: str | None = None, writeback: WriteBack | None = None):
        self.root = root  # the folder on this machine holding the store (local) or its cache (remote)
        self.location = location or root  # what the user named: a folder, or s3://bucket/prefix
        self.catalog = catalog
        self.blobs = blobs
        self.copies = copies
        self.staging = staging
        self.writeback = writeback
        self._state = state
        self._ids = Snowflake(catalog.claim_node)

    @classmethod
    def open(cls, location: str | os.PathLike[str], **options: Any) -> Store:
        """Open the store at `location`: a folder (SQLite + local blobs; made only with `create=True`),
        or `s3://bucket/prefix` with `mongo=URI` (see `backends.open_store` for the options)."""
        from .backends import open_store

        return open_store(location, **options)

    @property
    def remote(self) -> bool:
        """Whether metadata lives on another machine: its calls may wait on the network."""
        return self.writeback is not None

    def close(self) -> None:
        """Stop background work and release connections; pending uploads stay journaled for the next
        open (call `wait_uploads` first to finish them)."""
        self.catalog.close()
        self.blobs.close()

    def wait_uploads(self, progress: Callable[[int, int], None] | None = None,
                     timeout: float | None = None) -> bool:
        """Wait until every version committed through this cache is uploaded and published; `progress`
        gets (versions left, bytes left). Returns False on timeout. Local stores have nothing to wait for."""
        return True if self.writeback is None else self.writeback.wait_all(progress, timeout)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_uploaded(self, path: str, timeout: float = 120.0) -> None:
        """Return once no version of `path` (or below it) is pending upload; Unavailable after `timeout`."""
        if self.writeback is not None:
            self.writeback.wait_paths([self._path(path)], timeout)

    def status(self) -> dict[str, Any]:
        """Where the store is, its bytes (logical and stored; None while MongoDB cannot be reached), and
        for a remote one its pending uploads, cache use and recent errors."""
        try:
            usage: dict[str, int] | None = self.usage().as_dict()
        except Unavailable:
            usage = None  # the rest of the status is this machine's, and matters most now
        out: dict[str, Any] = {"store": self.location, "remote": self.remote, "folder": self.root, "bytes": usage}
        if self.writeback is not None:
            out.update(self.writeback.status())
        return out

    # -- paths -----------------------------------------------------------------------------

    @staticmethod
    def _path(path: str) -> str:
        return paths.check_path(path)

    @staticmethod
    def check_new_path(path: str, is_file: bool) -> str:
        """A path something is about to be created at: valid, not reserved, at most STORE_PATH_MAX
        bytes, files inside an experiment.

        Front ends call it to refuse a create before any byte is staged (e.g. FUSE `create`)."""
        p = paths.check_path(path)
        if p == "":
            raise InvalidPath("the store root cannot be written")
        if len(p.encode("utf-8", "surrogateescape")) > paths.STORE_PATH_MAX:
            raise InvalidPath(f"path longer than {paths.STORE_PATH_MAX} bytes: {p[:40]!r}...", errno.ENAMETOOLONG)
        parts = p.split("/")
        if parts[0] == INTERNAL:
            raise InvalidPath(f"{INTERNAL!r} is reserved for the store's own files")
        for part in parts:
            if part in paths.RESERVED:
                raise InvalidPath(f"{part!r} is a reserved name")
        if is_file and len(parts) <= paths.EXPERIMENT_DEPTH:
            raise NotPermitted(
                f"{p!r}: files live inside an experiment (namespace/project/experiment/...)"
            )
        return p

    # -- writing -----------------------------------------------------------------------------

    def _commit_file(
        self, path: str, place: Callable[[str], None], sha256: str, size: int, description: str | None,
        tags: tuple[str, ...], metadata: dict[str, Any], content_type: str | None,
        mtime: float | None, mode: int | None, carry: tuple[str, ...] = (), nowait: bool = False,
        link: bool = False,
    ) -> Version:
        """Steps 2 and 3 of the commit: `place` puts the complete bytes at their key, then the row goes in
        (taking the `carry` fields, and the mode unless given, from the previous version); `link`: the
        bytes are a symbolic link's target (only `symlink` says so)."""
        vid = self._ids.next()
        now = time.time()
        key = blob_key(path, vid)
        if link:
            mode = LINK_MODE
        elif mode is not None:
            mode &= 0o7777  # a file's mode is its permission bits, never another file type
        try:
            place(key)
        except OSError as e:
            raise os_failure(f"cannot store the bytes of {path!r}: {e.strerror or e}", e) from e
        v = Version(
            id=vid, path=path, size=size, sha256=sha256,
            content_type=content_type or content_type_of(paths.split(path)[1]),
            description=description, tags=tags, metadata=metadata, created_at=now, updated_at=now,
            mtime=now if mtime is None else mtime, mode=FILE_MODE if mode is None else mode,
            state=self._state, key=key,
        )
        inherit = (*carry, "mode") if mode is None else carry
        try:
            while True:
                try:
                    v = self.catalog.insert_version(v, inherit, nowait, share=True)
                    break
                except NewerExists as e:  # made elsewhere in the same millisecond: take a later id
                    v = dataclasses.replace(v, id=self._ids.next(after=e.newest))
        except BaseException:
            self.blobs.delete(key)
            raise
        if v.key != key:  # dedup: the same bytes were stored already, and the version uses them
            self.blobs.delete(key)
        if v.is_link and not link:
            # A file written over a link inherited the link's mode (the catalog's `inherit` copies the
            # whole int, and its interface stays as it is): make it a plain file. Until this update
            # lands (microseconds, and only for a file written at a link's path) it reads as a link.
            v = self.catalog.update_version(v.id, {"mode": FILE_MODE}, now)
        return v

    def _commit_staged_file(self, path: str, file: str, sha256: str, size: int, *args: Any) -> Version:
        try:
            return self._commit_file(path, lambda key: self.blobs.commit(key, file), sha256, size, *args)
        finally:
            Staging.remove(file)

    def _prepare(self, path: str, description: str | None, tags: Iterable[str] | None,
                 metadata: dict[str, Any] | None) -> tuple[str, str | None, tuple[str, ...], dict[str, Any]]:
        """Check everything about a put before any byte is written."""
        p = self.check_new_path(path, is_file=True)
        return p, check_description(description), check_tags(tags), check_metadata(metadata)

    def put_bytes(self, path: str, data: bytes | bytearray | memoryview, *, description: str | None = None,
                  tags: Iterable[str] | None = None, metadata: dict[str, Any] | None = None,
                  content_type: str | None = None, mtime: float | None = None, mode: int | None = None) -> Version:
        """Store `data` as the newest version of `path`."""
        p, d, t, m = self._prepare(path, description, tags, metadata)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidValue(f"data must be bytes, not {type(data).__name__}")
        mv = memoryview(data).cast("B")
        sha = hashlib.sha256(mv).hexdigest()
        return self._commit_file(p, lambda key: self.blobs.commit_bytes(key, mv), sha, mv.nbytes,
                                 d, t, m, content_type, mtime, mode)

    def symlink(self, path: str, target: str | bytes, *, description: str | None = None,
                tags: Iterable[str] | None = None, metadata: dict[str, Any] | None = None,
                mtime: float | None = None) -> Version:
        """Store a symbolic link to `target` as the newest version of `path` (its bytes are the target,
        so checksums, history, rename and delete work as for files; see records.LINK_MODE)."""
        p, d, t, m = self._prepare(path, description, tags, metadata)
        data = check_link_target(target)
        return self._commit_file(p, lambda key: self.blobs.commit_bytes(key, memoryview(data)),
                                 hashlib.sha256(data).hexdigest(), len(data), d, t, m, LINK_TYPE, mtime, None,
                                 link=True)

    def _stage_copy(self, p: str, copy: Callable[[Callable[[memoryview], None]], tuple[Any, int]]
                    ) -> tuple[str, str, int]:
        """Run `copy(write)` into a fresh staging file; returns (file, sha256 hex, size)."""
        file = self.staging.new_file(paths.split(p)[1])
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                h, size = copy(write_all(fd))
            finally:
                os.close(fd)
        except BaseException as e:
            Staging.remove(file)
            if isinstance(e, OSError) and not isinstance(e, StoreError):
                raise os_failure(f"cannot stage {p!r}: {e.strerror or e}", e) from e
            raise
        return file, h.hexdigest(), size

    def put_stream(self, path: str, stream: BinaryIO, *, progress: Callable[[int], None] | None = None,
                   description: str | None = None, tags: Iterable[str] | None = None,
                   metadata: dict[str, Any] | None = None, content_type: str | None = None,
                   mtime: float | None = None, mode: int | None = None) -> Version:
        """Store everything read from `stream` (read once, hashed as it streams in)."""
        p, d, t, m = self._prepare(path, description, tags, metadata)
        readinto = getattr(stream, "readinto", None)
        if readinto is None:
            def readinto(mv: memoryview) -> int:
                chunk = stream.read(len(mv))
                mv[: len(chunk)] = chunk
                return len(chunk)
        file, sha, size = self._stage_copy(p, lambda write: copy_hashing(readinto, write, progress))
        return self._commit_staged_file(p, file, sha, size, d, t, m, content_type, mtime, mode)

    def put_file(self, path: str, src: str | os.PathLike[str], *, progress: Callable[[int], None] | None = None,
                 description: str | None = None, tags: Iterable[str] | None = None,
                 metadata: dict[str, Any] | None = None, content_type: str | None = None,
                 mtime: float | None = None, mode: int | None = None) -> Version:
        """Store the local file `src` (read once, through a mapping; SHA-256 computed while it is copied)."""
        p, d, t, m = self._prepare(path, description, tags, metadata)
        src = os.fspath(src)
        if os.path.isdir(src):
            raise IsADirectory(f"source {src!r} is a directory, not a file")
        try:
            f = open(src, "rb", buffering=0)
        except FileNotFoundError as e:
            raise NotFound(f"source file not found: {src}") from e
        except OSError as e:
            raise Unavailable(f"cannot read {src}: {e.strerror or e}") from e
        with f:
            if os.fstat(f.fileno()).st_size < CHUNK:
                data = f.read()
                if progress is not None:
                    progress(len(data))
                return self._commit_file(p, lambda key: self.blobs.commit_bytes(key, memoryview(data)),
                                         hashlib.sha256(data).hexdigest(), len(data), d, t, m, content_type,
                                         mtime, mode)
            file, sha, size = self._stage_copy(p, lambda write: copy_file_hashing(f.fileno(), write, progress))
        return self._commit_staged_file(p, file, sha, size, d, t, m, content_type, mtime, mode)

    def open_writer(self, path: str, *, description: str | None = None, tags: Iterable[str] | None = None,
                    metadata: dict[str, Any] | None = None, content_type: str | None = None,
                    mtime: float | None = None, mode: int | None = None) -> Writer:
        """A file object whose bytes become a version on close (discarded on an exception in `with`)."""
        p, d, t, m = self._prepare(path, description, tags, metadata)
        staged = Staged(self.staging, paths.split(p)[1])
        return Writer(staged, lambda st: self._commit_staged(p, st, d, t, m, content_type, mtime, mode))

    def stage(self, base: Version | None = None, name: str | None = None) -> Staged:
        """A private writable staging file, starting as a (lazy) copy of `base` if given."""
        opener = (lambda: self.open_version(base), base.size) if base is not None else None
        return Staged(self.staging, name or (base.name if base else "staged"), opener)

    def commit(self, path: str, staged: Staged, *, description: str | None = _UNSET,
               tags: Iterable[str] | None = _UNSET, metadata: dict[str, Any] | None = _UNSET,
               content_type: str | None = None, mtime: float | None = None, mode: int | None = None,
               nowait: bool = False) -> Version:
        """Make a staged file the newest version of `path`; omitted description/tags/metadata carry over
        from the previous version (a rewrite through the mount keeps the file's xattrs).

        With `nowait` it commits only what needs no waiting: at most NOWAIT_BYTES held in memory, local
        blobs, a catalog that takes the row at once. Otherwise it raises WouldBlock, with nothing
        changed and `staged` intact for a commit without `nowait`."""
        if nowait and not (self.blobs.instant and staged.in_memory and staged.size <= NOWAIT_BYTES):
            raise WouldBlock(f"committing {path!r} means writing large or remote bytes")
        try:
            p = self.check_new_path(path, is_file=True)
            d = None if description is _UNSET else check_description(description)
            t = () if tags is _UNSET else check_tags(tags)
            m = {} if metadata is _UNSET else check_metadata(metadata)
        except BaseException:
            staged.discard()
            raise
        carry = tuple(f for f, given in (("description", description), ("tags", tags), ("metadata", metadata))
                      if given is _UNSET)
        return self._commit_staged(p, staged, d, t, m, content_type, mtime, mode, carry, nowait)

    def _commit_staged(self, p: str, staged: Staged, d: str | None, t: tuple[str, ...], m: dict[str, Any],
                       content_type: str | None, mtime: float | None, mode: int | None,
                       carry: tuple[str, ...] = (), nowait: bool = False) -> Version:
        try:
            sha, size = staged.finish()
        except BaseException:
            staged.discard()
            raise
        if staged.in_memory:
            return self._commit_file(p, lambda key: self.blobs.commit_bytes(key, staged.data), sha, size,
                                     d, t, m, content_type, mtime, mode, carry, nowait)
        assert staged.path is not None
        return self._commit_staged_file(p, staged.path, sha, size, d, t, m, content_type, mtime, mode, carry)

    # -- reading -----------------------------------------------------------------------------

    def latest(self, path: str) -> Version:
        v = self.latest_or_none(path)
        if v is None:
            raise NotFound(f"no file {self._path(path)!r}")
        return v

    def latest_or_none(self, path: str) -> Version | None:
        """The newest live version of `path`, or None if there is no file (IsADirectory for a directory)."""
        p = self._path(path)
        found = self.catalog.lookup(p)
        if isinstance(found, Dir):
            raise IsADirectory(f"{p!r} is a directory")
        return found

    def get_version(self, vid: int | str) -> Version:
        n = parse_id(vid)
        if n is None:
            raise NotFound(f"{vid!r} is not a file id: ids are decimal numbers below 2**63")
        v = self.catalog.get_version(n)
        if v is None or v.deleted:
            raise NotFound(f"no file with id {vid}")
        return v

    def history(self, path: str) -> list[Version]:
        p = self._path(path)
        h = self.catalog.history(p)
        if not h:
            self.latest(p)  # raises the right error
        return h

    def deleted_since(self, path: str, since: float) -> bool:
        """Whether a version of file `path` was deleted at or after `since` (epoch seconds): its
        newest version may then have changed to an older one, whose `created_at` does not show it."""
        return self.catalog.deleted_since(self._path(path), since)

    def link_target(self, v: Version) -> str:
        """The target of link version `v` (bytes that are not UTF-8 kept as surrogates, as os.readlink
        gives them); InvalidValue if `v` is no link."""
        if not v.is_link:
            raise InvalidValue(f"{v.path!r} (id {v.id}) is not a symbolic link")
        return self.read_bytes(v).decode("utf-8", "surrogateescape")

    def open_version(self, v: Version) -> BinaryIO:
        """A seekable reader of the version's bytes (remote ones are checked against its SHA-256)."""
        fd = self.open_copy(v)
        if fd is not None:
            return open(fd, "rb")
        now = self._current(v)
        if now is None:
            raise NotFound(f"no file with id {v.id_str}")
        return self.blobs.open(now)

    def read_bytes(self, v: Version) -> bytes:
        with self.open_version(v) as f:
            return f.read()

    def local_file(self, v: Version) -> str | None:
        """A file on this machine holding exactly the version's bytes, or None (not cached yet)."""
        return self.copies.local_file(v)

    def open_copy(self, v: Version) -> int | None:
        """An open descriptor of a file on this machine holding exactly the version's bytes, or None
        (not cached, or deleted). A record read while the version was pending here still opens after
        its upload, which moves the copy, or publishes it onto another blob (dedup) and drops it."""
        fd = self.copies.open_copy(v)
        if fd is None and self._pending(v):
            now = self._current(v)
            if now is not None and now.key != v.key:
                fd = self.copies.open_copy(now)
        return fd

    def _pending(self, v: Version) -> bool:
        """Whether `v` is a record of a version that was waiting for its upload here when it was read."""
        return self.writeback is not None and v.state == self._state

    def _current(self, v: Version) -> Version | None:
        """The record of a version pending when `v` was read, as it is now (None: deleted since); any
        other record as it is."""
        if not self._pending(v):
            return v
        now = self.catalog.get_version(v.id)
        return now if now is not None and not now.deleted else None

    def drop_cache(self, v: Version) -> None:
        """A hint that the version will not be read soon (the page cache may drop its pages)."""
        self.copies.forget_pages(v)

    def stat(self, path: str) -> Version | Dir:
        p = self._path(path)
        found = self.catalog.lookup(p)
        if found is None:
            raise NotFound(f"no such file or directory {p!r}")
        return found

    def listdir(self, path: str, after: str | None = None, limit: int = 1000) -> list[Entry]:
        p = self._path(path)
        return self._listing(p, self.catalog.listdir(p, after, limit))

    def list_stats(self, path: str, after: str | None = None, limit: int = 1000) -> list[Stat]:
        p = self._path(path)
        return self._listing(p, self.catalog.list_stats(p, after, limit))

    def _listing(self, p: str, rows: list[Any]) -> list[Any]:
        """`rows` of directory `p`, or NotFound/NotADirectory when an empty page means `p` is no directory."""
        if not rows and self.catalog.get_dir(p) is None:
            if self.catalog.latest(p) is not None:
                raise NotADirectory(f"{p!r} is a file")
            raise NotFound(f"no directory {p!r}")
        return rows

    def list(self, under: str = "", pattern: str | None = None, tags: Iterable[str] | None = None) -> list[Version]:
        top = self._path(under)
        want = set(check_tags(tags))
        out = []
        for v in self.catalog.iter_files(top):
            if pattern is not None and not globs.match(pattern, paths.relative_to(v.path, top)):
                continue
            if want and not want.issubset(v.tags):
                continue
            out.append(v)
        return out

    # -- changing ----------------------------------------------------------------------------

    def update(self, vid: int | str, *, description: str | None = _UNSET, tags: Iterable[str] | None = _UNSET,
               metadata: dict[str, Any] | None = _UNSET) -> Version:
        v = self.get_version(vid)
        fields: dict[str, Any] = {}
        if description is not _UNSET:
            fields["description"] = check_description(description)
        if tags is not _UNSET:
            fields["tags"] = check_tags(tags)
        if metadata is not _UNSET:
            fields["metadata"] = check_metadata(metadata)
        return self.catalog.update_version(v.id, fields, time.time())

    def set_attrs(self, path: str, mtime: float | None = None, mode: int | None = None) -> None:
        p = self._path(path)
        v = self.catalog.latest(p)
        if v is not None:
            if mode is not None:  # permission bits only; a link has none of its own (always 0o777)
                mode = None if v.is_link else mode & 0o7777
            fields = {k: val for k, val in (("mtime", mtime), ("mode", mode)) if val is not None}
            if fields:
                self.catalog.update_version(v.id, fields, time.time())
        elif self.catalog.get_dir(p) is not None:
            self.catalog.set_dir_attrs(p, mtime, mode)
        else:
            raise NotFound(f"no such file or directory {p!r}")

    def delete(self, path: str) -> None:
        self.catalog.delete_path(self._path(path), time.time())

    def delete_version(self, vid: int | str) -> None:
        self.catalog.delete_version(self.get_version(vid).id, time.time())

    def mkdir(self, path: str, parents: bool = False, exist_ok: bool = False, mode: int = DIR_MODE) -> None:
        """Make directory `path` with permission bits `mode` (mkdir(2)'s; implied parents get DIR_MODE)."""
        self.catalog.mkdir(self.check_new_path(path, is_file=False), time.time(), parents, exist_ok, mode & 0o7777)

    def rmdir(self, path: str) -> None:
        self.catalog.rmdir(self._path(path))

    def rename(self, src: str, dst: str, replace: bool = True) -> None:
        s = self._path(src)
        kind = self.stat(s)
        if isinstance(kind, Version):
            self.catalog.rename_file(s, self.check_new_path(dst, is_file=True), self._ids.next(), time.time(), replace)
        else:
            d = self.check_new_path(dst, is_file=False)
            self._check_moved_lengths(s, d)
            self.catalog.rename_dir(s, d, time.time(), replace)

    def _check_moved_lengths(self, src: str, dst: str) -> None:
        """ENAMETOOLONG if moving directory `src` to `dst` would make a file's path below it longer
        than STORE_PATH_MAX (a longer `dst` only; it reads every file path below `src`)."""
        grow = len(dst.encode("utf-8", "surrogateescape")) - len(src.encode("utf-8", "surrogateescape"))
        if grow <= 0:
            return
        for v in self.catalog.iter_files(src):
            if len(v.path.encode("utf-8", "surrogateescape")) + grow > paths.STORE_PATH_MAX:
                raise InvalidPath(f"moving {src!r} to {dst!r} would make {v.path!r} longer than "
                                  f"{paths.STORE_PATH_MAX} bytes", errno.ENAMETOOLONG)

    def iter_versions(self, under: str = "") -> Iterator[Version]:
        """Every live version below `under`, by path then id (a remote store lists published ones)."""
        return self.catalog.iter_versions(self._path(under))

    def expire_versions(self, vids: Iterable[int]) -> builtins.list[Version]:
        """Soft-delete the given versions except any that is its path's newest or pending upload;
        returns those deleted (retention: mldashfs/retention.py; `gc` then reclaims their bytes)."""
        return self.catalog.expire_versions(list(vids), time.time())

    def gc(self) -> int:
        """Reclaim the bytes that only deleted versions reference; returns bytes freed."""
        keys = self.catalog.dead_keys()
        freed = sum(self.blobs.delete(k) for k in keys)
        self.catalog.forget_keys(keys)
        return freed

    def usage(self, under: str = "") -> Usage:
        """Live versions below `under` (a folder or a file): their logical bytes and the bytes of the
        distinct blobs they use (see `Catalog.usage`); a remote store counts published versions."""
        return self.catalog.usage(self._path(under))

    def statvfs(self) -> os.statvfs_result:
        """Capacity of the disk holding the store (for statfs)."""
        return os.statvfs(self.root)
