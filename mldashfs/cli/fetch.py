"""Copy one stored version to a local file, verified against its SHA-256 before it appears.

Invariant: DEST is either left as it was or replaced whole by bytes whose SHA-256 and size
match the catalog. The bytes go to a hidden temporary file beside DEST (same directory, so
the final rename is atomic); on any failure, a mismatch included, the temporary file is removed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable

from ..errors import ChecksumMismatch, NotADirectory, NotFound, StoreError
from ..records import Version
from ..store import Store

CHUNK = 1024 * 1024


def destination(dest: str, v: Version) -> str:
    """Where `get` writes: DEST itself, or DEST/<filename> when DEST is a directory (or ends in '/')."""
    if os.path.isdir(dest):
        return os.path.join(dest, v.name)
    if dest.endswith("/"):
        raise NotFound(f"no such directory: {dest}")
    parent = os.path.dirname(dest) or "."
    if not os.path.exists(parent):
        raise NotFound(f"no such directory: {parent}")
    if not os.path.isdir(parent):
        raise NotADirectory(f"not a directory: {parent}")
    return dest


def fetch_verified(store: Store, v: Version, dest: str, progress: Callable[[int], None] | None = None) -> str:
    """Write version `v` to `dest` (see `destination`), check size and SHA-256, then rename into place."""
    final = destination(dest, v)
    tmp = os.path.join(os.path.dirname(final) or ".", f".{v.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise StoreError(f"cannot write beside {final}: {e.strerror}") from e
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
        got = digest.hexdigest()
        if got != v.sha256 or size != v.size:
            raise ChecksumMismatch(
                f"{v.path} (id {v.id}): stored bytes do not match the catalog "
                f"(sha256 {got[:12]}.. over {size} bytes, expected {v.sha256[:12]}.. over {v.size}); "
                f"nothing written to {final}"
            )
        os.replace(tmp, final)
    except OSError as e:
        _remove(tmp)
        raise StoreError(f"cannot write {final}: {e.strerror or e}") from e
    except BaseException:
        _remove(tmp)
        raise
    return final


def _remove(path: str) -> None:
    """Remove a temporary file if it is still there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
