"""A place inside one experiment's files: `exp.files("models")`, `exp.files("model.pt")`.

As a folder it is where savers write, `list()` looks and globs match; as a file (or a
`file_id=`) it is what `download()`, `delete()`, `exists()`, `read_text()` and `update()` act on.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mldashfs import downloads, paths
from mldashfs.errors import IsADirectory, NotFound, StoreError
from mldashfs.records import Version
from mldashfs.store import check_tags

from . import locations
from .savers import Result, Savers

if TYPE_CHECKING:
    from .experiment import Experiment


class FileRef(Savers):
    """A folder or file inside one experiment, with default description/tags/metadata for saves."""

    def __init__(
        self,
        experiment: Experiment,
        path: str | os.PathLike[str] | None = None,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
        file_path: str | os.PathLike[str] | None = None,
        file_id: int | str | None = None,
        dest_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._experiment = experiment
        self._path = locations.folder(path)
        self._description = description
        self._tags = check_tags(tags) if tags is not None else None
        self._metadata = metadata
        self._file_path = file_path
        self._file_id = file_id
        self._dest_path = dest_path

    def __repr__(self) -> str:
        return f"FileRef({self._experiment.path!r}, {self._path!r})"

    # -- finding files ---------------------------------------------------------------------

    def _versions(self, pattern: str | None = None, tags: Iterable[str] | None = None) -> list[Version]:
        """Live files below this folder matching `pattern`; run data (.ml_dash/) only when asked for."""
        top = self._full()
        return [v for v in self._experiment.store.list(top, pattern, tags) if not paths.hidden_below(v.path, top)]

    def _by_id(self) -> Version:
        unknown = NotFound(f"unknown file id {self._file_id!r} in experiment {self._experiment.path}")
        if self._file_id is None:
            raise unknown
        try:
            version = self._experiment.store.get_version(self._file_id)
        except NotFound as e:
            raise unknown from e
        if version.deleted or version.experiment != self._experiment.path:
            raise unknown
        return version

    def _locate(self, rel: str | None = None) -> Version:
        """The file this ref names (by file_id=, or by path, or by a unique bare file name)."""
        if self._file_id is not None:
            return self._by_id()
        name = paths.join(self._path, locations.relative(rel)) if rel else self._path
        if not name:
            raise ValueError("name a file: files('path/to/file'), or files(file_id=...)")
        try:
            return self._experiment.store.latest(paths.join(self._experiment.path, name))
        except NotFound:
            pass
        if "/" not in name and not locations.has_magic(name):
            # ml-dash 0.11 also finds a file by its bare name anywhere in the experiment.
            matches = FileRef(self._experiment)._versions("**/" + name)
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                where = ", ".join(v.to_dict()["path"] for v in matches)
                raise NotFound(f"{name!r} is ambiguous in experiment {self._experiment.path}: it is in {where}")
        raise NotFound(f"no file {name!r} in experiment {self._experiment.path}")

    def list(self, pattern: str | None = None, *, tags: Iterable[str] | None = None) -> list[Result]:
        """Result dicts of the files below this folder, sorted by path.

        `pattern` is a glob relative to this folder: `*` stays in one folder, `**/` spans folders
        (`*.png`, `**/*.json`); `tags` keeps files carrying all of them.
        """
        return [self._result(v) for v in self._versions(pattern, tags)]

    def _result(self, v: Version) -> Result:
        """The result dict of `v`; a symbolic link's (`isLink`) also carries its `linkTarget`."""
        out = v.to_dict()
        if v.is_link:
            out["linkTarget"] = self._experiment.store.link_target(v)
        return out

    def exists(self) -> bool:
        """True if this path names a stored file."""
        try:
            self._locate()
        except (NotFound, IsADirectory):
            return False
        return True

    def read_bytes(self) -> bytes:
        """The bytes of the file at this path (checksum verified)."""
        return downloads.read_verified(self._experiment.store, self._locate())

    def read_text(self, encoding: str = "utf-8") -> str:
        """The text of the file at this path (checksum verified)."""
        return self.read_bytes().decode(encoding)

    # -- downloading, deleting, updating ---------------------------------------------------

    def download(
        self, pattern: str | None = None, *, to: str | os.PathLike[str] | None = None
    ) -> str | builtins.list[str]:
        """Copy files out of the store, verifying each SHA-256 (a link comes out as a link to the same
        target); returns the path(s) written.

        Without a glob: the one file this ref (or `pattern` below it) names, to `to` (a file, or an
        existing folder or one ending in '/'), else `dest_path=`, else the current directory under its own name.
        With a glob: every match, into the folder `to` (default: current dir), keeping paths
        relative to this folder.
        """
        if pattern is not None and locations.has_magic(pattern):
            found = self._versions(pattern)
            if not found:
                raise NotFound(f"no files match {pattern!r} under {self._full()!r}")
            folder = os.fspath(to) if to is not None else "."
            return [
                self._download(v, os.path.join(folder, *paths.relative_to(v.path, self._full()).split("/")))
                for v in found
            ]
        version = self._locate(pattern)
        dest = to if to is not None else self._dest_path
        target = os.fspath(dest) if dest is not None else version.name
        if os.path.isdir(target) or target.endswith(("/", os.sep)):
            target = os.path.join(target, version.name)
        return self._download(version, target)

    def _download(self, version: Version, target: str) -> str:
        """The core's verified download to `target`, making its folders first (globs keep sub-folders)."""
        folder = os.path.dirname(os.path.abspath(target))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot make the folder {folder}: {e.strerror or e}") from e
        return downloads.download(self._experiment.store, version, target)

    def versions(self) -> builtins.list[Result]:
        """Every live version of the file this ref names, oldest first, as `mldashfs versions` lists them."""
        return [self._result(v) for v in self._experiment.store.history(self._locate().path)]

    def delete(self, pattern: str | None = None) -> Result | builtins.list[Result]:
        """Delete the file this ref names (all its versions), or every match of a glob below it.

        With `file_id=`, deletes just that version. Returns the result dict(s) of what was deleted.
        """
        store = self._experiment.store
        if pattern is not None and locations.has_magic(pattern):
            found = self._versions(pattern)
            if not found:
                raise NotFound(f"no files match {pattern!r} under {self._full()!r}")
            for v in found:
                store.delete(v.path)
            return [v.to_dict() for v in found]
        version = self._locate(pattern)
        if self._file_id is not None:
            store.delete_version(version.id)
        else:
            store.delete(version.path)
        return version.to_dict()

    def update(self) -> Result:
        """Replace the description/tags/metadata given to files(file_id=..., ...) on that version."""
        if self._file_id is None:
            raise ValueError("update() needs files(file_id=..., description=/tags=/metadata=...)")
        changes = {k: v for k, v in self._kw(None, None, None).items() if v is not None}
        if not changes:
            raise ValueError("update() needs description=, tags= or metadata= to change")
        version = self._by_id()
        return self._experiment.store.update(version.id, **changes).to_dict()
