"""The Catalog interface: where the metadata of every version, file and directory lives.

Backends: `SqliteCatalog` (embedded default). A MongoDB backend implements the same methods.
Every method that changes more than one row is atomic: it happens whole or not at all.
Paths given to a catalog are already validated store paths (see `paths.check_path`).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import InvalidPath, NotPermitted
from .records import DIR_MODE, Dir, Entry, Stat, Version


def dir_move_changes_nothing(src: str, dst: str) -> bool:
    """The checks of `rename_dir`'s arguments every backend makes first: the root stays, a folder
    does not move into itself; True when the move is onto itself (nothing to do)."""
    if src == "":
        raise NotPermitted("cannot rename the store root")
    if dst.startswith(src + "/"):
        raise InvalidPath(f"cannot move {src!r} into itself ({dst!r})")
    return dst == src


class NewerExists(Exception):
    """An insert found the path's newest version at an id at or above the new one (another process
    made it in the same millisecond): the version must take an id above `newest` and try again."""

    def __init__(self, newest: int) -> None:
        super().__init__(f"a version with id {newest} is newer")
        self.newest = newest


@dataclass(frozen=True)
class Usage:
    """Bytes of a store or a folder of it (`mldashfs du`, `mldashfs status`)."""

    versions: int  # live versions, history included
    logical: int  # the sum of their sizes: what they would take if no bytes were shared
    blobs: int  # distinct blobs they use
    stored: int  # the bytes of those blobs: what they take
    reclaimable: int  # bytes of blobs only deleted versions use (whole store only: `gc` frees them)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class Catalog(ABC):
    """Metadata of versions (immutable bytes elsewhere), the live file per path, and directories."""

    @abstractmethod
    def claim_node(self) -> int:
        """Lease a snowflake node number no other live process using this catalog holds."""

    @abstractmethod
    def insert_version(self, v: Version, inherit: Collection[str] = (), nowait: bool = False,
                       newest: bool = True, share: bool = False) -> Version:
        """Add a committed version as the newest of its path, creating implied parent directories.

        The fields named in `inherit` ("mode", "description", "tags", "metadata") are taken from the
        path's previous newest version, if there is one, in the same atomic step. Returns the version
        as stored. Raises IsADirectory if the path is a directory, NotADirectory if an ancestor is a
        file, NewerExists (changing nothing) if the path's newest version has an id >= `v.id`; with
        `newest=False` such a version goes in as history instead (an upload of a version committed
        earlier on another machine, published after a newer one). With `nowait` it raises WouldBlock,
        having changed nothing, rather than wait (for a lock, the network, a checkpoint); backends that
        always wait raise it every time.

        With `share` (dedup) the version takes the key of a live version with the same SHA-256 and size
        if there is one, in the same atomic step: the returned version's key says which, and the caller
        removes its own copy of the bytes. A remote store shares at upload instead (`share_blob`).
        """

    @abstractmethod
    def get_version(self, vid: int) -> Version | None:
        """A version by id, live or deleted."""

    @abstractmethod
    def latest(self, path: str) -> Version | None:
        """The newest live version of the file at `path`."""

    @abstractmethod
    def history(self, path: str) -> list[Version]:
        """Live versions of `path`, oldest first."""

    @abstractmethod
    def deleted_since(self, path: str, since: float) -> bool:
        """Whether a version of `path` was soft-deleted at or after `since` (until gc forgets it)."""

    @abstractmethod
    def get_dir(self, path: str) -> Dir | None:
        """The directory at `path` ('' is the root and always exists)."""

    def lookup(self, path: str) -> Version | Dir | None:
        """What is at `path`: its newest live version, the directory, or None; backends override it
        with one round trip (a lookup of a name about to be created asks both)."""
        return self.latest(path) or self.get_dir(path)

    @abstractmethod
    def listdir(self, path: str, after: str | None, limit: int) -> list[Entry]:
        """Up to `limit` children of a directory with names > `after`, sorted by name."""

    def list_stats(self, path: str, after: str | None, limit: int) -> list[Stat]:
        """`listdir` with only what `ls -l` shows; backends override it with a leaner query."""
        return [Stat.of(e) for e in self.listdir(path, after, limit)]

    @abstractmethod
    def iter_files(self, under: str) -> Iterator[Version]:
        """Newest live version of every file below `under`, sorted by path."""

    @abstractmethod
    def update_version(self, vid: int, fields: dict[str, Any], now: float) -> Version:
        """Change description/tags/metadata/mtime/mode of one version in place."""

    @abstractmethod
    def set_dir_attrs(self, path: str, mtime: float | None, mode: int | None) -> None:
        """Change a directory's mtime/mode."""

    @abstractmethod
    def delete_path(self, path: str, now: float) -> None:
        """Soft-delete every version of a file; prune implied parents left empty."""

    @abstractmethod
    def delete_version(self, vid: int, now: float) -> None:
        """Soft-delete one version; the file's newest version becomes the one before."""

    @abstractmethod
    def mkdir(self, path: str, now: float, parents: bool, exist_ok: bool, mode: int = DIR_MODE) -> None:
        """Make an explicit (kept while empty) directory with permission bits `mode` (implied parents
        get DIR_MODE; an existing directory keeps its own)."""

    @abstractmethod
    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""

    @abstractmethod
    def rename_file(self, src: str, dst: str, new_id: int, now: float, replace: bool) -> None:
        """Rename a file (see docs/store-api.md: onto a file it adds a version with `new_id`)."""

    @abstractmethod
    def rename_dir(self, src: str, dst: str, now: float, replace: bool) -> None:
        """Move a directory and everything below it."""

    # -- retention (mldashfs/retention.py decides what goes; these two list and delete) ---------

    @abstractmethod
    def iter_versions(self, under: str) -> Iterator[Version]:
        """Every live version below `under`, sorted by path then id (what a retention policy walks)."""

    @abstractmethod
    def expire_versions(self, vids: list[int], now: float) -> list[Version]:
        """Soft-delete those of `vids` that are live and not their path's newest live version; returns
        those deleted. The check and the delete are one step per version, so a path never loses its
        newest version to retention, whatever other writers do meanwhile."""

    @abstractmethod
    def dead_keys(self) -> list[str]:
        """Blob keys that only deleted versions reference."""

    @abstractmethod
    def forget_keys(self, keys: list[str]) -> None:
        """Drop the (deleted) version rows of keys whose bytes were reclaimed."""

    @abstractmethod
    def usage(self, under: str) -> Usage:
        """What the live versions below `under` hold: logical bytes, and the bytes of their distinct
        blobs (dedup and renames share blobs); plus what only deleted versions hold, for `gc`."""

    # -- dedup at upload (a remote catalog; SQLite shares at insert: `insert_version(share=True)`) ---

    @abstractmethod
    def claim_blob(self, sha256: str, size: int) -> str | None:
        """The key of a stored blob of these bytes, which gc leaves alone until `release_blob`; None
        when there is none (the caller then stores its own bytes)."""

    @abstractmethod
    def release_blob(self, key: str) -> None:
        """End a claim of `claim_blob` (the version using the blob is in, or will not be)."""

    @abstractmethod
    def register_blob(self, v: Version) -> None:
        """`v`'s bytes are stored whole at `v.key`: later versions with the same bytes may share them."""

    # -- fsck ---------------------------------------------------------------------------------

    @abstractmethod
    def all_keys(self) -> set[str]:
        """Blob keys any version row names, live or deleted (bytes no row names are orphans)."""

    @abstractmethod
    def live_versions(self) -> Iterator[Version]:
        """Every live version, history included (each needs its bytes)."""

    @abstractmethod
    def check(self) -> list[str]:
        """Broken catalog invariants, one line each (empty when consistent)."""

    @abstractmethod
    def repair(self) -> int:
        """Fix what `check` finds (idempotent steps); returns how many problems were fixed."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and the node lease."""
