"""Verified reads of stored versions: the one implementation behind `mldashfs get` and the SDK's `download`.

Invariant: a destination is either left as it was or replaced whole by bytes whose size and
SHA-256 match the catalog. The bytes go to a hidden temporary file beside the destination (same
directory, so the final rename is atomic), created with mode 0666 less the umask, as `cp` makes
files; on any failure, a mismatch included, the temporary file is removed. A link version becomes a
symbolic link with the same (verified) target, as `cp -a` and `rsync -a` copy links: a tree copied
out of the store is the tree that went in, dangling links included.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable

from .errors import ChecksumMismatch, StoreError
from .records import Version
from .store import Store

CHUNK = 1024 * 1024


def _mismatch(v: Version, sha256: str, size: int, where: str) -> ChecksumMismatch:
    """The error for bytes that are not what the catalog recorded."""
    return ChecksumMismatch(
        f"{v.path} (id {v.id}): the stored bytes hash to sha256 {sha256} over {size} bytes, the catalog "
        f"recorded {v.sha256} over {v.size}: the stored copy is damaged; "
        f"nothing written{where}"
    )


def download(store: Store, v: Version, dest: str, progress: Callable[[int], None] | None = None) -> str:
    """Write version `v` to the file `dest` (its folder must exist), check size and SHA-256, then
    rename it into place; `progress` gets each chunk's byte count. Returns `dest`."""
    tmp = _temporary(dest)
    if v.is_link:
        return _download_link(store, v, dest, tmp, progress)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise StoreError(f"cannot write beside {dest}: {e.strerror or e}") from e
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out, store.open_version(v) as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if progress is not None:
                    progress(len(chunk))
        if digest.hexdigest() != v.sha256 or size != v.size:
            raise _mismatch(v, digest.hexdigest(), size, f" to {dest}")
        os.replace(tmp, dest)
    except OSError as e:
        _remove(tmp)
        raise StoreError(f"cannot write {dest}: {e.strerror or e}") from e
    except BaseException:
        _remove(tmp)
        raise
    return dest


def _temporary(dest: str) -> str:
    """A hidden name beside `dest` for the copy that is renamed into place."""
    return os.path.join(os.path.dirname(dest) or ".", f".{os.path.basename(dest)}.{secrets.token_hex(4)}.part")


def _download_link(store: Store, v: Version, dest: str, tmp: str,
                   progress: Callable[[int], None] | None) -> str:
    """Make `dest` a symbolic link to link version `v`'s verified target (made as `tmp`, then renamed)."""
    target = read_verified(store, v)
    try:
        os.symlink(target, tmp)
    except OSError as e:
        raise StoreError(f"cannot write beside {dest}: {e.strerror or e}") from e
    try:
        os.replace(tmp, dest)
    except OSError as e:
        _remove(tmp)
        raise StoreError(f"cannot write {dest}: {e.strerror or e}") from e
    if progress is not None:
        progress(len(target))
    return dest


def read_verified(store: Store, v: Version) -> bytes:
    """The bytes of version `v`, checked against its size and SHA-256."""
    data = store.read_bytes(v)
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != v.sha256 or len(data) != v.size:
        raise _mismatch(v, sha256, len(data), "")
    return data


def _remove(path: str) -> None:
    """Remove a temporary file if it is still there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
