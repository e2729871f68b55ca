"""Verified reads: every byte handed back is checked against the SHA-256 recorded at commit.

A download writes to a hidden temp file next to the destination, checks it, then renames it
into place, so a checksum mismatch (or any error) leaves no file behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from mldashfs.errors import ChecksumMismatch
from mldashfs.records import Version
from mldashfs.store import Store

CHUNK = 1 << 20


def _mismatch(version: Version, actual: str) -> ChecksumMismatch:
    return ChecksumMismatch(
        f"checksum mismatch for {version.path} (id {version.id}): recorded sha256 {version.sha256}, "
        f"stored bytes hash to {actual}; the stored copy is damaged and nothing was written"
    )


def download(store: Store, version: Version, dest: str | os.PathLike[str]) -> str:
    """Copy `version` to `dest` (parents made as needed) after verifying its SHA-256; returns dest."""
    dest = os.fspath(dest)
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".part", dir=parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, store.open_version(version) as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != version.sha256:
            raise _mismatch(version, digest.hexdigest())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest


def read_bytes(store: Store, version: Version) -> bytes:
    """The bytes of `version`, verified against its SHA-256."""
    data = store.read_bytes(version)
    actual = hashlib.sha256(data).hexdigest()
    if actual != version.sha256:
        raise _mismatch(version, actual)
    return data
