"""The Blobs interface: the bytes of each version, one object per version, never rewritten; and the
LocalCopies interface: where this machine keeps complete copies of versions' bytes as plain files.

Backends: `LocalBlobs` (a folder; the embedded default: each blob is its own local copy) and
`RemoteBlobs` (S3 behind an on-disk cache, with write-back uploads; the cache holds the local copies).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import BinaryIO

from .paths import EXPERIMENT_DEPTH
from .records import Version


def blob_key(path: str, vid: int) -> str:
    """`{namespace}/{project}/{experiment}/files/{prefix}/{id}/{filename}`: the ML-Dash layout."""
    parts = path.split("/")
    exp, prefix, name = parts[:EXPERIMENT_DEPTH], parts[EXPERIMENT_DEPTH:-1], parts[-1]
    return "/".join([*exp, "files", *prefix, str(vid), name])


def is_blob_key(key: str) -> bool:
    """Whether `key` has the shape `blob_key` gives (a folder holds other files too: logs, a README)."""
    parts = key.split("/")
    return (len(parts) >= EXPERIMENT_DEPTH + 3 and parts[EXPERIMENT_DEPTH] == "files" and parts[-2].isdigit()
            and "" not in parts and not parts[0].startswith("."))


@dataclass(frozen=True)
class StoredBlob:
    """One blob as its backend lists it (fsck compares these with the catalog's keys)."""

    key: str
    size: int
    mtime: float  # when it was written, epoch seconds (orphans younger than a safety age are left alone)


class Blobs(ABC):
    """Where committed bytes live, addressed by key."""

    #: Committing a small blob writes to this machine's disk only and takes microseconds, so it may
    #: run on the daemon's event loop (`Store.commit(nowait=True)` relies on it).
    instant: bool = False

    @abstractmethod
    def commit(self, key: str, staged_file: str) -> None:
        """Make the complete staging file `staged_file` the blob `key` (it is consumed)."""

    @abstractmethod
    def commit_bytes(self, key: str, data: memoryview) -> None:
        """Make `data` the blob `key` (small saves skip the staging file)."""

    @abstractmethod
    def open(self, v: Version) -> BinaryIO:
        """A seekable binary reader of a version's bytes."""

    @abstractmethod
    def delete(self, key: str) -> int:
        """Remove a blob; returns the bytes reclaimed (0 if it was already gone)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and threads."""


class LocalCopies(ABC):
    """Complete, verified copies of versions' bytes as files on this machine (the daemon hands
    their descriptors to the kernel, so reads of them run at the local disk's speed)."""

    @abstractmethod
    def local_file(self, v: Version) -> str | None:
        """A local file holding exactly the version's bytes, or None when this machine has none (the
        name may be gone by the time it is opened: readers use `open_copy`)."""

    @abstractmethod
    def open_copy(self, v: Version) -> int | None:
        """An open descriptor of a local file holding exactly the version's bytes, or None when this
        machine has none."""

    @abstractmethod
    def forget_pages(self, v: Version) -> None:
        """A hint: the copy will not be read soon, so the page cache may give its memory back."""
