"""The Blobs interface: the bytes of each version, one object per version, never rewritten.

Backends: `LocalBlobs` (a folder; the embedded default). An S3 backend implements the same methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import BinaryIO

from .paths import EXPERIMENT_DEPTH


def blob_key(path: str, vid: int) -> str:
    """`{namespace}/{project}/{experiment}/files/{prefix}/{id}/{filename}`: the ML-Dash layout."""
    parts = path.split("/")
    exp, prefix, name = parts[:EXPERIMENT_DEPTH], parts[EXPERIMENT_DEPTH:-1], parts[-1]
    return "/".join([*exp, "files", *prefix, str(vid), name])


class Blobs(ABC):
    """Where committed bytes live, addressed by key."""

    #: The bytes live on this machine's disk, so writing a small blob takes microseconds and never
    #: waits on the network (`Store.commit(nowait=True)` relies on it).
    local: bool = False

    @abstractmethod
    def commit(self, key: str, staged_file: str) -> None:
        """Make the complete staging file `staged_file` the blob `key` (it is consumed)."""

    @abstractmethod
    def commit_bytes(self, key: str, data: memoryview) -> None:
        """Make `data` the blob `key` (small saves skip the staging file)."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A seekable binary reader of a blob."""

    @abstractmethod
    def local_path(self, key: str) -> str | None:
        """A path on this machine holding the blob's bytes, if there is one."""

    @abstractmethod
    def drop_cache(self, key: str) -> None:
        """A hint: the blob will not be read soon, so memory caching it may be given back."""

    @abstractmethod
    def delete(self, key: str) -> int:
        """Remove a blob; returns the bytes reclaimed (0 if it was already gone)."""
