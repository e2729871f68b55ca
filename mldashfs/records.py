"""What the catalog holds: one immutable `Version` per write, `Dir` for prefixes, `Entry` and `Stat` for listings."""

from __future__ import annotations

import datetime as _dt
import stat
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .paths import EXPERIMENT_DEPTH, experiment_of, split

FILE_MODE = 0o644
DIR_MODE = 0o755
#: A symbolic link is a version whose bytes are its target and whose mode carries the file type
#: (the catalog stores the mode as an int, so links need no column or table of their own; a link's
#: permission bits are always 0o777, as Linux shows them). Only `Store.symlink` makes one.
LINK_MODE = stat.S_IFLNK | 0o777
#: The content type of a link version (the freedesktop.org shared-mime-info name).
LINK_TYPE = "inode/symlink"


def iso(ts: float) -> str:
    """Epoch seconds as an ISO-8601 UTC string with milliseconds, e.g. 2026-11-22T10:00:00.123Z."""
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


@dataclass(frozen=True)
class Version:
    """One stored version of one file; its bytes never change once committed."""

    id: int
    path: str
    size: int
    sha256: str
    content_type: str
    description: str | None
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    mtime: float
    mode: int  # permission bits; a link's carry S_IFLNK too (records.LINK_MODE)
    state: str
    key: str
    deleted: bool = False

    @property
    def name(self) -> str:
        return split(self.path)[1]

    @property
    def dir(self) -> str:
        return split(self.path)[0]

    @property
    def experiment(self) -> str:
        return experiment_of(self.path)

    @property
    def prefix(self) -> str:
        """The directories between the experiment and the name ('' at the experiment's top)."""
        return "/".join(self.path.split("/")[EXPERIMENT_DEPTH:-1])

    @property
    def id_str(self) -> str:
        return str(self.id)

    @property
    def is_link(self) -> bool:
        """True for a symbolic link: its bytes are the link's target (see LINK_MODE)."""
        return stat.S_ISLNK(self.mode)

    def to_dict(self) -> dict[str, Any]:
        """The SDK's result dict (ids as decimal strings, times as ISO-8601 UTC; `path` is the folder)."""
        return {
            "id": self.id_str,
            "filename": self.name,
            "path": "/" + self.prefix,  # the folder, as ml-dash 0.11 reports it ("/models", "/")
            "prefix": self.prefix,
            "experiment": self.experiment,
            "sizeBytes": self.size,
            "checksum": self.sha256,
            "contentType": self.content_type,
            "description": self.description,
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "state": self.state,
            "isLink": self.is_link,
        }


@dataclass(frozen=True)
class Dir:
    """A directory: a namespace, project, experiment or prefix."""

    path: str
    mtime: float
    mode: int = DIR_MODE
    explicit: bool = False

    @property
    def name(self) -> str:
        return split(self.path)[1]


@dataclass(frozen=True)
class Entry:
    """One row of a directory listing: a file (with its newest version) or a directory."""

    name: str
    version: Version | None = None
    dir: Dir | None = field(default=None)

    @property
    def is_dir(self) -> bool:
        return self.dir is not None


class Stat(NamedTuple):
    """What `ls -l` needs of one listed entry: a tuple, cheap to build for listings of 100k entries."""

    name: str
    is_dir: bool
    size: int
    mtime: float
    ctime: float  # the last change of the entry's metadata (xattr edits move it, not mtime)
    mode: int  # permission bits; a link's carry S_IFLNK too (records.LINK_MODE)

    @classmethod
    def of(cls, e: Entry) -> Stat:
        if e.version is not None:
            v = e.version
            return cls(e.name, False, v.size, v.mtime, max(v.updated_at, v.mtime), v.mode)
        assert e.dir is not None
        return cls(e.name, True, 0, e.dir.mtime, e.dir.mtime, e.dir.mode)
