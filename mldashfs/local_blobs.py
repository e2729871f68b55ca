"""Blobs in a local folder: `{root}/{key}`; committing is a rename from the staging area on the same disk."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .blobs import Blobs, LocalCopies, StoredBlob, is_blob_key
from .errors import NotFound
from .hashing import CHUNK, write_all
from .records import Version


def drop_pages(file: str) -> None:
    """Evict a file's clean pages from the kernel page cache (dirty ones are left to writeback)."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


#: Tries of a commit whose folder an empty-folder prune (gc, or a dedup removing its copy) took away.
RACES = 5


class LocalBlobs(Blobs, LocalCopies):
    """The embedded default blob store; every blob is its own local copy."""

    instant = True

    def __init__(self, root: str) -> None:
        self.root = root

    def _file(self, key: str) -> str:
        return os.path.join(self.root, key)

    def commit(self, key: str, staged_file: str) -> None:
        dest = self._file(key)
        for attempt in range(RACES):  # gc or a dedup's delete may remove an empty parent meanwhile
            try:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.rename(staged_file, dest)
                return
            except FileNotFoundError:
                if attempt == RACES - 1 or not os.path.exists(staged_file):
                    raise

    def commit_bytes(self, key: str, data: memoryview) -> None:
        """Write straight to the key: invisible until the catalog row names it, so no rename is needed."""
        dest = self._file(key)
        folder = os.path.dirname(dest)
        try:
            fd = self._create(folder, dest)
            try:
                write_all(fd)(data)
            finally:
                os.close(fd)
        except BaseException:  # a full disk leaves nothing: no partial bytes, no empty version folder
            if not self.delete(key):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
            raise

    @staticmethod
    def _create(folder: str, dest: str) -> int:
        """Make the version's folder (and its parents) and create `dest` in it; a descriptor to write."""
        tries = 0
        while True:
            try:
                try:
                    os.mkdir(folder)  # the version's own folder; its parents are usually there already
                except FileNotFoundError:
                    os.makedirs(folder, exist_ok=True)
                except FileExistsError:
                    pass
                return os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:  # gc or a dedup's delete removed an empty parent meanwhile
                tries += 1
                if tries == RACES:
                    raise

    def open(self, v: Version) -> BinaryIO:
        try:
            return open(self._file(v.key), "rb")
        except FileNotFoundError as e:
            raise NotFound(f"the bytes of {v.key!r} are missing from {self.root}") from e

    def local_file(self, v: Version) -> str | None:
        return self._file(v.key)

    def open_copy(self, v: Version) -> int | None:
        try:
            return os.open(self._file(v.key), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None

    def forget_pages(self, v: Version) -> None:
        drop_pages(self._file(v.key))

    def delete(self, key: str) -> int:
        f = self._file(key)
        try:
            size = os.stat(f).st_size
            os.unlink(f)
        except FileNotFoundError:
            return 0
        d = os.path.dirname(f)  # the per-version {id} folder, then empty prefix folders
        while d != self.root and d.startswith(self.root):
            try:
                os.rmdir(d)
            except OSError:
                break
            d = os.path.dirname(d)
        return size

    # -- fsck -------------------------------------------------------------------------------------

    def list_keys(self) -> Iterator[StoredBlob]:
        """Every file under the folder laid out like a blob key (the store's own folder is skipped)."""
        for folder, dirs, files in os.walk(self.root):
            rel = os.path.relpath(folder, self.root)
            if rel == ".":
                dirs[:] = [d for d in dirs if not d.startswith(".")]  # .mldashfs: catalog, staging, logs
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if not is_blob_key(key):
                    continue
                try:
                    st = os.lstat(os.path.join(folder, name))
                except FileNotFoundError:  # gc removed it meanwhile
                    continue
                yield StoredBlob(key, st.st_size, st.st_mtime)

    def size_of(self, key: str) -> int | None:
        """The size of blob `key`, None when it is missing."""
        try:
            return os.stat(self._file(key)).st_size
        except FileNotFoundError:
            return None

    def sha256_of(self, key: str, progress: Callable[[int], None] | None = None) -> str:
        """SHA-256 of every byte of blob `key` as stored (NotFound if missing); `progress(n)` per chunk."""
        h = hashlib.sha256()
        try:
            with open(self._file(key), "rb", buffering=0) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    if progress:
                        progress(len(chunk))
        except FileNotFoundError as e:
            raise NotFound(f"the bytes of {key!r} are missing from {self.root}") from e
        return h.hexdigest()

    def close(self) -> None:
        """Nothing to release: a folder holds no connections."""
